"""data.layout instrument: ANDI/AIA netCDF, mzML and JCAMP-DX run files, written here (netCDF
with scipy.io's netcdf_file, mzML as XML text, JCAMP-DX as text), each quirk of the formats,
the demo in every format against its CSV, and the real Agilent ChemStation export."""

from __future__ import annotations

import base64
import hashlib
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.io import netcdf_file

from spectrovision.cli import main
from spectrovision.config.schema import representation_block, validate_config
from spectrovision.synth.demo import generate_demo_dataset
from spectrovision.data.ingest import ingest_run
from spectrovision.data.instrument import (INSTRUMENT_QC_SCHEMA, ingest_instrument_run,
                                           ingest_instrument_shard, read_scans,
                                           summarize_instrument_qc)
from spectrovision.data.layouts import InstrumentLayout, get_layout
from spectrovision.data.sheet import load_sample_sheet, run_columns
from spectrovision.errors import InputError
from spectrovision.provenance import code
from support import derived_config, run_snakemake, tiny_workflow_config, write_config

AGILENT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "instrument" / \
    "agilent-gcms.cdf"
NULL = -9999.0


# --- writers: the files as instruments write them ---------------------------------------------
def write_andi(path: Path, times: list[float], scans: list[list[tuple[float, float]]], *,
               scan_index: list[int] | None = None, point_count: list[int] | None = None,
               extra: list[tuple[float, float]] = (), time_units: bytes | None = None,
               experiment: bytes = b"Centroided Mass Spectrum") -> Path:
    """An ANDI/AIA MS file: ``scans`` of (m/z, intensity) points at ``times``, with the
    index given (default: consistent with the arrays) and ``extra`` points after them."""
    points = [p for scan in scans for p in scan] + list(extra)
    counts = point_count if point_count is not None else [len(s) for s in scans]
    index = scan_index if scan_index is not None else list(np.cumsum([0] + counts[:-1]))
    nc = netcdf_file(path, "w")
    nc.experiment_type = experiment
    nc.createDimension("scan_number", len(times))
    nc.createDimension("point_number", len(points))
    for name, kind, values in (("scan_acquisition_time", "d", times), ("scan_index", "i", index),
                               ("point_count", "i", counts)):
        nc.createVariable(name, kind, ("scan_number",))[:] = values
    for name, column in (("mass_values", 0), ("intensity_values", 1)):
        nc.createVariable(name, "f", ("point_number",))[:] = [p[column] for p in points]
    if time_units is not None:
        nc.variables["scan_acquisition_time"].units = time_units
    nc.close()
    return path


MS_PARAMS = {"64": ("MS:1000523", "64-bit float", "<f8"), "32": ("MS:1000521", "32-bit float", "<f4")}


def mz_array(values: list[float], accession: str, name: str, bits: str, zipped: bool) -> str:
    code_, type_name, dtype = MS_PARAMS[bits]
    raw = np.asarray(values, dtype=dtype).tobytes()
    raw = zlib.compress(raw) if zipped else raw
    compression = ('MS:1000574" name="zlib compression' if zipped
                   else 'MS:1000576" name="no compression')
    return (f'<binaryDataArray><cvParam cvRef="MS" accession="{code_}" name="{type_name}"/>'
            f'<cvParam cvRef="MS" accession="{compression}"/>'
            f'<cvParam cvRef="MS" accession="{accession}" name="{name}"/>'
            f"<binary>{base64.b64encode(raw).decode()}</binary></binaryDataArray>")


def mz_spectrum(n: int, time: float, points: list[tuple[float, float]], *, level: int = 1,
                profile: bool = False, bits: str = "64", zipped: bool = False,
                unit: str = "minute", length: int | None = None) -> str:
    kind = "MS:1000128\" name=\"profile spectrum" if profile else \
        "MS:1000127\" name=\"centroid spectrum"
    unit_accession = {"minute": "UO:0000031", "second": "UO:0000010"}[unit]
    masses, intensities = [p[0] for p in points], [p[1] for p in points]
    return (f'<spectrum index="{n}" id="scan={n + 1}" '
            f'defaultArrayLength="{len(points) if length is None else length}">'
            f'<cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="{level}"/>'
            f'<cvParam cvRef="MS" accession="{kind}"/><scanList count="1"><scan>'
            f'<cvParam cvRef="MS" accession="MS:1000016" name="scan start time" value="{time}" '
            f'unitCvRef="UO" unitAccession="{unit_accession}" unitName="{unit}"/></scan>'
            '</scanList><binaryDataArrayList count="2">'
            + mz_array(masses, "MS:1000514", "m/z array", bits, zipped)
            + mz_array(intensities, "MS:1000515", "intensity array", bits, zipped)
            + "</binaryDataArrayList></spectrum>")


def write_mzml(path: Path, spectra: list[str], indexed: bool = False) -> Path:
    body = ('<mzML xmlns="http://psi.hupo.org/ms/mzml" version="1.1.0"><cvList count="1">'
            '<cv id="MS" fullName="PSI-MS"/></cvList><run id="r">'
            f'<spectrumList count="{len(spectra)}">' + "\n".join(spectra)
            + "</spectrumList></run></mzML>")
    if indexed:
        body = f'<indexedmzML xmlns="http://psi.hupo.org/ms/mzml">{body}</indexedmzML>'
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n")
    return path


def write_text(path: Path, text: str) -> Path:
    path.write_text(text.lstrip())
    return path


def ingest(path: Path, **qc) -> tuple[pd.DataFrame, dict]:
    return ingest_instrument_run(path, {"drop_masses": [], **qc})


# --- the format is told by the content ----------------------------------------------------------
def test_each_format_is_told_by_its_content_not_its_extension(tmp_path):
    andi = write_andi(tmp_path / "a.mzML", [60.0, 120.0], [[(18.0, 5.0)], [(44.0, 7.0)]])
    mzml = write_mzml(tmp_path / "b.cdf", [mz_spectrum(0, 1.0, [(18.0, 5.0)]),
                                            mz_spectrum(1, 2.0, [(44.0, 7.0)])], indexed=True)
    jcamp = write_text(tmp_path / "c.csv", """
##TITLE=c
##JCAMP-DX=5.01
##PAGE= T=1.0
##DATA TABLE= (XY..XY), PEAKS
18,5
##PAGE= T=2.0
##DATA TABLE= (XY..XY), PEAKS
44,7
##END=
""")
    for path, fmt in ((andi, "andi"), (mzml, "mzml"), (jcamp, "jcamp")):
        run, record = ingest(path)
        assert record["format"] == fmt
        assert run["time"].tolist() == [1.0, 2.0]  # minutes, whatever the format
        assert run["mass"].tolist() == [18, 44] and run["intensity"].tolist() == [5.0, 7.0]
        assert [str(t) for t in run.dtypes] == ["float32", "int16", "float32"]


@pytest.mark.parametrize("content, expected", [
    (b"time,mass,intensity\n1,18,5\n", "the file is a CSV table"),
    (b"\x89HDF\r\n\x1a\n" + bytes(40), "netCDF-4/HDF5"),
    (b"\x1f\x8b\x08" + bytes(40), "gzip-compressed data"),
    (b'<?xml version="1.0"?><mzXML>', "XML, but not mzML"),
])
def test_a_file_of_no_instrument_format_is_refused_saying_what_it_is(tmp_path, content,
                                                                     expected):
    path = tmp_path / "run.cdf"
    path.write_bytes(content)
    with pytest.raises(InputError, match=expected) as info:
        ingest(path)
    assert str(path) in str(info.value) and "Fix: " in str(info.value)


# --- ANDI/AIA netCDF ----------------------------------------------------------------------------
def test_andi_seconds_become_minutes_unless_the_file_says_minutes(tmp_path):
    seconds = write_andi(tmp_path / "s.cdf", [30.0, 90.0], [[(18.0, 1.0)], [(18.0, 2.0)]])
    minutes = write_andi(tmp_path / "m.cdf", [30.0, 90.0], [[(18.0, 1.0)], [(18.0, 2.0)]],
                         time_units=b"Minutes")
    assert ingest(seconds)[0]["time"].tolist() == [0.5, 1.5]
    assert ingest(minutes)[0]["time"].tolist() == [30.0, 90.0]


def test_andi_point_count_past_the_arrays_is_an_error_naming_the_scan(tmp_path):
    path = write_andi(tmp_path / "r.cdf", [1.0, 2.0, 3.0],
                      [[(18.0, 1.0)], [(28.0, 2.0)], [(44.0, 3.0)]], point_count=[1, 1, 2])
    with pytest.raises(InputError, match=r"scan 3: scan_index 2 \+ point_count 2 runs past "
                                         r"the 3 points of mass_values") as info:
        ingest(path)
    assert info.value.column == "scan_index" and "re-export" in info.value.fix


def test_andi_overlapping_scans_are_an_error(tmp_path):
    path = write_andi(tmp_path / "r.cdf", [1.0, 2.0], [[(18.0, 1.0), (28.0, 1.0)], [(44.0, 3.0)]],
                      scan_index=[0, 1], point_count=[2, 1])
    with pytest.raises(InputError, match="scan 2: scan_index 1 starts before the scan before "
                                         "it ends .* the scans overlap"):
        ingest(path)


def test_andi_points_outside_every_scan_are_dropped_and_counted(tmp_path):
    path = write_andi(tmp_path / "r.cdf", [60.0, 120.0], [[(18.0, 1.0)], [(44.0, 2.0)]],
                      extra=[(99.0, 50.0), (98.0, 60.0)])
    run, record = ingest(path)
    assert record["unindexed_points"] == 2 and record["n_rows_raw"] == 2
    assert run["mass"].tolist() == [18, 44]


def test_andi_null_values_drop_the_point_or_the_scan(tmp_path):
    path = write_andi(tmp_path / "r.cdf", [60.0, NULL, 180.0],
                      [[(18.0, 1.0), (28.0, NULL)], [(32.0, 5.0), (44.0, 6.0)],
                       [(NULL, 4.0), (40.0, 7.0)]])
    run, record = ingest(path)
    assert record["null_values"] == 4  # one intensity, one m/z, a scan of two points
    assert run["time"].tolist() == [1.0, 3.0] and run["mass"].tolist() == [18, 40]
    assert record["nonfinite_dropped"] == 0 and record["n_rows"] == 2


def test_andi_empty_scans_are_counted(tmp_path):
    path = write_andi(tmp_path / "r.cdf", [60.0, 120.0, 180.0],
                      [[(18.0, 1.0)], [], [(44.0, 2.0)]])
    run, record = ingest(path)
    assert record["empty_scans"] == 1 and run["time"].tolist() == [1.0, 3.0]


def test_andi_profile_points_are_summed_per_rounded_mass(tmp_path):
    profile = [(43.6, 1.0), (43.8, 2.0), (44.0, 10.0), (44.2, 3.0), (44.45, 4.0), (44.6, 100.0)]
    path = write_andi(tmp_path / "r.cdf", [60.0, 120.0], [profile, [(18.0, 5.0)]],
                      experiment=b"Continuum Mass Spectrum")
    run, record = ingest(path)
    assert record["profile_scans"] == 2
    assert run["mass"].tolist() == [44, 45, 18]
    assert run["intensity"].tolist() == [20.0, 100.0, 5.0]  # 1 + 2 + 10 + 3 + 4 at m/z 44
    assert record["merged_points"] == 4 and record["fractional_mass"] == 5


def test_qc_errors_inside_an_instrument_file_name_the_scan(tmp_path):
    path = write_andi(tmp_path / "r.cdf", [60.0, 120.0], [[(18.0, 1.0)], [(44.0, np.nan)]])
    with pytest.raises(InputError, match=r"NaN, inf or empty value.* \(scan 2\)") as info:
        ingest(path)
    assert info.value.column == "intensity_values"
    run, record = ingest(path, nonfinite="drop", min_rows=1)
    assert record["nonfinite_dropped"] == 1 and run["mass"].tolist() == [18]
    negative = write_andi(tmp_path / "n.cdf", [60.0, 120.0],
                          [[(18.0, -3.0), (28.0, 2.0)], [(18.0, 1.0)]])
    run, record = ingest(negative)  # qc.negative_intensity: clip, as for CSV runs
    assert record["negative_intensity"] == 1 and run["intensity"].tolist() == [0.0, 2.0, 1.0]
    single = write_andi(tmp_path / "s.cdf", [60.0], [[(18.0, 1.0), (28.0, 2.0)]])
    with pytest.raises(InputError, match="single scan") as info:  # as for CSV runs
        ingest(single)
    assert info.value.column == "scan time"


def test_an_md5_mismatch_is_reported_for_instrument_files(tmp_path):
    path = write_andi(tmp_path / "r.cdf", [60.0], [[(18.0, 1.0)], ])
    with pytest.raises(InputError, match="md5 checksum mismatch"):
        ingest_instrument_run(path, {"min_rows": 1}, "0" * 32)
    good = hashlib.md5(path.read_bytes()).hexdigest()
    assert ingest_instrument_run(path, {"min_rows": 1}, good)[1]["md5_ok"] is True


# --- mzML -----------------------------------------------------------------------------------------
def test_mzml_keeps_ms1_decodes_every_array_kind_and_counts_the_quirks(tmp_path):
    spectra = [
        mz_spectrum(0, 1.0, [(18.1, 5.0), (44.0, 7.5)], bits="64", zipped=False),
        mz_spectrum(1, 1.1, [(44.0, 900.0)], level=2, bits="32", zipped=True),
        mz_spectrum(2, 120.0, [(28.0, 3.0), (32.25, 1.5)], bits="32", zipped=True,
                    unit="second"),
        mz_spectrum(3, 2.5, [], zipped=True),
        mz_spectrum(4, 3.0, [(27.7, 1.0), (28.0, 2.0), (28.3, 4.0), (29.0, 8.0)], profile=True,
                    bits="64", zipped=True),
    ]
    run, record = ingest(write_mzml(tmp_path / "r.mzML", spectra))
    assert record["ms2_dropped"] == 1 and record["empty_scans"] == 1
    assert record["profile_scans"] == 1 and record["merged_points"] == 2
    assert record["n_rows_raw"] == 8  # the MS1 points
    assert run["time"].tolist() == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]  # 120 s = 2 min
    assert run["mass"].tolist() == [18, 44, 28, 32, 28, 29]
    assert run["intensity"].tolist() == [5.0, 7.5, 3.0, 1.5, 7.0, 8.0]
    assert 900.0 not in run["intensity"].tolist()


def test_mzml_array_length_disagreeing_with_the_spectrum_is_an_error(tmp_path):
    path = write_mzml(tmp_path / "r.mzML", [mz_spectrum(0, 1.0, [(18.0, 5.0)]),
                                             mz_spectrum(1, 2.0, [(44.0, 7.0)], length=3)])
    with pytest.raises(InputError, match="spectrum 'scan=2' .*defaultArrayLength 3, but its "
                                         "m/z array has 1 values"):
        ingest(path)


def test_a_truncated_mzml_file_is_an_error_not_a_traceback(tmp_path):
    full = write_mzml(tmp_path / "r.mzML", [mz_spectrum(0, 1.0, [(18.0, 5.0)], zipped=True)])
    full.write_bytes(full.read_bytes()[:-60])
    with pytest.raises(InputError, match="the mzML file cannot be read") as info:
        ingest(full)
    assert "msconvert" in info.value.fix


# --- JCAMP-DX -------------------------------------------------------------------------------------
JCAMP_BLOCKS = """
##TITLE=run
##JCAMP-DX=4.24
##DATA TYPE=MASS SPECTRUM
##BLOCKS=3
##TITLE=scan 1
##RETENTION_TIME=1.5
##NPOINTS=3
##PEAK TABLE=(XY..XY)
18.1,100 28,250
44,?
##END=
##TITLE=scan 2
##NPOINTS=0
##RETENTION_TIME=2.5
##PEAK TABLE=(XY..XY)
##END=
##TITLE=scan 3 (profile)
##RETENTION_TIME=3.5
##XYDATA=(XY..XY)
43.8, 1; 44.0, 2; 44.2, 3 $$ a comment
##END=
"""


def test_jcamp_blocks_peak_tables_profile_data_and_nulls(tmp_path):
    run, record = ingest(write_text(tmp_path / "r.jdx", JCAMP_BLOCKS))
    assert record["format"] == "jcamp" and record["null_values"] == 1
    assert record["empty_scans"] == 1 and record["profile_scans"] == 1
    assert record["merged_points"] == 2
    assert run["time"].tolist() == [1.5, 1.5, 3.5]
    assert run["mass"].tolist() == [18, 28, 44] and run["intensity"].tolist() == [100, 250, 6]


def test_jcamp_seconds_named_in_units_become_minutes(tmp_path):
    text = """
##TITLE=t
##NTUPLES=MASS SPECTRUM
##SYMBOL=X, Y, T
##UNITS=M/Z, RELATIVE ABUNDANCE, SECONDS
##PAGE= T=90
##DATA TABLE= (XY..XY), PEAKS
18,1
##END NTUPLES=MASS SPECTRUM
"""
    assert ingest(write_text(tmp_path / "r.jdx", text), min_rows=1)[0]["time"].tolist() == [1.5]


@pytest.mark.parametrize("edit, message", [
    (("##NPOINTS=3", "##NPOINTS=4"), r"scan 1 \(line 6\): ##NPOINTS= 4, but 3 points follow"),
    (("##NPOINTS=0", "##NPOINTS=1"), r"scan 2 \(line 14\): ##NPOINTS= 1, but 0 points follow"),
    (("44,?", "44"), r"scan 1 \(line 6\) has 5 values: an m/z without its intensity"),
    (("##XYDATA=(XY..XY)", "##XYDATA=(X++(Y..Y))"), r"line 19: .* only \(XY..XY\) pairs"),
    (("28,250", "28,lots"), r"non-numeric value 'lots' in the scan of line 6"),
    (("##RETENTION_TIME=1.5\n", ""), r"scan 1 \(line 7\) has no retention time"),
])
def test_bad_jcamp_files_are_errors_naming_the_line(tmp_path, edit, message):
    path = write_text(tmp_path / "r.jdx", JCAMP_BLOCKS.replace(*edit))
    with pytest.raises(InputError, match=message) as info:
        ingest(path)
    assert info.value.row is not None and str(path) in str(info.value)


# --- the shard, the QC summary and the layout ---------------------------------------------------
def test_a_mixed_shard_records_each_format_and_the_summary_lists_them(tmp_path):
    andi = write_andi(tmp_path / "a", [60.0, 120.0], [[(4.0, 9.0), (18.0, 1.0)], [(44.0, 2.0)]])
    mzml = write_mzml(tmp_path / "b", [mz_spectrum(0, 1.0, [(18.0, 5.0)]),
                                        mz_spectrum(1, 1.1, [(44.0, 5.0)], level=2),
                                        mz_spectrum(2, 2.0, [(44.0, 7.0)])])
    jcamp = write_text(tmp_path / "c", JCAMP_BLOCKS)
    records = [{"sample_id": s, "features_path": str(p), "md5": None}
               for s, p in (("A", andi), ("B", mzml), ("C", jcamp))]
    qc = ingest_instrument_shard(records, tmp_path / "runs", tmp_path / "qc" / "s0.parquet")
    assert qc.columns.tolist() == INSTRUMENT_QC_SCHEMA.names
    assert qc["format"].tolist() == ["andi", "mzml", "jcamp"]
    assert qc["dropped_mass"].tolist() == [1, 0, 0]  # helium, qc.drop_masses default
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "A.parquet", "B.parquet", "C.parquet"]
    table, text = summarize_instrument_qc([tmp_path / "qc" / "s0.parquet"])
    assert "Formats: andi 1, mzml 1, jcamp 1 runs." in text
    assert "| ms2_dropped | 1 | 1 |" in text and "| null_values | 1 | 1 |" in text
    empty, _ = summarize_instrument_qc([])
    assert empty.columns.tolist() == INSTRUMENT_QC_SCHEMA.names


def test_the_instrument_layout_is_registered_validated_and_in_minutes(tmp_path):
    layout = get_layout("instrument")
    assert type(layout) is InstrumentLayout
    view = layout.render_view(representation_block(
        {"n_mass": 8, "n_x": 4, "x_window": [0, 30], "x_step": 1}))
    assert view["axes"]["x_label"] == "time (min)"
    config = validate_config(derived_config({"data": {"layout": "instrument",
                                                      "dir": str(tmp_path)}}))
    assert config["data"]["layout"] == "instrument"
    assert run_columns(config["data"]).temp is None


def test_editing_the_instrument_reader_reruns_only_instrument_ingest(package_copy):
    def versions() -> dict[tuple[str, str], str]:
        code.direct_imports.cache_clear()
        from spectrovision.data.layouts import layout_code_version

        return {(layout, stage): layout_code_version(layout, stage)
                for layout in ("mars2", "instrument") for stage in ("ingest", "qc", "render")}

    before = versions()
    path = package_copy / "data" / "instrument.py"
    path.write_text(path.read_text() + "\n# edited\n")
    after = versions()
    assert {k for k in before if before[k] != after[k]} == {("instrument", "ingest"),
                                                            ("instrument", "qc")}


# --- the demo in every format -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_formats(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("demo_formats")
    return {fmt: generate_demo_dataset(root / fmt, n_runs=4, seed=5, n_scans=(30, 40),
                                       run_format=fmt)
            for fmt in ("csv", "andi", "mzml", "jcamp", "mixed")}


@pytest.mark.parametrize("fmt", ["andi", "mzml", "jcamp"])
def test_each_demo_format_ingests_to_the_run_of_the_csv(demo_formats, fmt):
    csv_meta = pd.read_csv(demo_formats["csv"] / "metadata.csv")
    meta = pd.read_csv(demo_formats[fmt] / "metadata.csv")
    assert meta.drop(columns=["features_path", "features_md5_hash"]).equals(
        csv_meta.drop(columns=["features_path", "features_md5_hash"]))
    for csv_path, path, md5 in zip(csv_meta["features_path"], meta["features_path"],
                                   meta["features_md5_hash"]):
        columns = run_columns(validate_config({})["data"])  # mars2
        expected, _ = ingest_run(demo_formats["csv"] / csv_path, columns)
        run, record = ingest_instrument_run(demo_formats[fmt] / path, {}, md5)
        assert record["format"] == fmt and record["md5_ok"]
        assert np.array_equal(run["mass"], expected["mass"])
        assert np.array_equal(run["intensity"], expected["intensity"])
        # the CSV adds each m/z's read-out offset (< 0.9 scan) to the scan start time
        scan = np.diff(np.unique(run["time"])).min()
        lag = expected["time"].to_numpy(np.float64) - run["time"].to_numpy(np.float64)
        assert lag.min() > -1e-4 and lag.max() < 0.9 * scan + 1e-4
        for other in ("andi", "mzml", "jcamp"):  # the formats agree to float32
            twin = demo_formats[other] / path.rsplit(".", 1)[0]
            twin = next(twin.parent.glob(twin.name + ".*"))
            assert np.allclose(ingest_instrument_run(twin)[0]["time"], run["time"],
                               rtol=1e-6, atol=0)


def test_demo_data_format_option_writes_the_instrument_files(tmp_path, capsys):
    assert main(["demo-data", "--out", str(tmp_path / "d"), "--n-runs", "3",
                 "--format", "mixed"]) == 0
    assert "as mixed files (data.layout: instrument)" in capsys.readouterr().out
    meta = pd.read_csv(tmp_path / "d" / "metadata.csv")
    assert [Path(p).suffix for p in meta["features_path"]] == [".cdf", ".mzML", ".jdx"]
    formats = [read_scans(tmp_path / "d" / p).format for p in meta["features_path"]]
    assert formats == ["andi", "mzml", "jcamp"]
    sheet = load_sample_sheet(validate_config({"data": {"layout": "instrument",
                                                        "dir": str(tmp_path / "d")},
                                               "workflow": {"shards": 1}}))
    assert len(sheet) == 3 and "derivatized" not in sheet.columns  # no layout metadata


def test_demo_data_csv_is_the_default_and_unchanged(tmp_path):
    main(["demo-data", "--out", str(tmp_path / "a"), "--n-runs", "2", "--seed", "4"])
    generate_demo_dataset(tmp_path / "b", n_runs=2, seed=4, run_format="csv")
    for name in ("metadata.csv", "train_labels.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    meta = pd.read_csv(tmp_path / "a" / "metadata.csv")
    assert all(p.endswith(".csv") for p in meta["features_path"])
    first = (tmp_path / "a" / meta["features_path"][0]).read_text().splitlines()
    assert first[0] == "time,mass,intensity" and len(first[1].split(",")) == 3


# --- the real Agilent ChemStation export ----------------------------------------------------------
@pytest.mark.shared_data
@pytest.mark.skipif(not AGILENT.is_file(), reason="../shared/data/instrument not present")
def test_the_real_agilent_chemstation_export(tmp_path):
    scans = read_scans(AGILENT)
    assert scans.format == "andi" and scans.n_scans == 6401 and len(scans.mass) == 157201
    assert np.all(np.diff(scans.time) > 0)
    assert scans.time[0] == pytest.approx(5.25 / 60) and scans.time[-1] == pytest.approx(
        3779.754 / 60)
    run, record = ingest_instrument_run(AGILENT, {"drop_masses": []})
    assert record["n_rows_raw"] == 157201 and record["unindexed_points"] == 0
    assert record["empty_scans"] == 0 and record["null_values"] == 0
    assert record["n_rows"] + record["merged_points"] + record["above_max_mass"] == 157201
    assert np.all(np.diff(run["time"].to_numpy()) >= 0)
    assert run["intensity"].sum() == pytest.approx(float(scans.intensity.sum()), rel=1e-5)


# --- the workflow from a mixed-format data set -------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_the_tiny_workflow_runs_from_mixed_instrument_files(tmp_path):
    data = generate_demo_dataset(tmp_path / "data", n_runs=36, seed=0, n_scans=(40, 60),
                                 run_format="mixed")
    config = tiny_workflow_config(data, tmp_path / "results")
    config["data"]["layout"] = "instrument"
    config["models"] = {"tiny_pool": config["models"]["tiny_pool"]}
    write_config(tmp_path / "config.yaml", config)
    run_snakemake(tmp_path, extra=("--quiet", "all"))
    qc = pd.read_parquet(tmp_path / "results" / "qc" / "qc.parquet")
    assert sorted(qc["format"].value_counts().to_dict().items()) == [
        ("andi", 12), ("jcamp", 12), ("mzml", 12)]
    assert "Formats: andi 12, mzml 12, jcamp 12 runs." in (
        tmp_path / "results" / "qc" / "qc_summary.md").read_text()
    submission = pd.read_csv(tmp_path / "results" / "submission.csv")
    template = pd.read_csv(data / "submission_format.csv")
    assert list(submission["sample_id"]) == list(template["sample_id"])
    assert submission.drop(columns="sample_id").notna().all().all()
