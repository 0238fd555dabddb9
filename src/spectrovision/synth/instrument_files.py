"""Write runs as instrument files (ANDI/AIA netCDF, mzML, JCAMP-DX), for the demo data set
(``spectrovision demo-data --format``) and the benchmark.

Each writer takes a :class:`~spectrovision.data.instrument.Scans` (time in minutes) and
returns the file's bytes, deterministic for the same scans. They write the plain form of each
format, MS1 centroid spectra; the reader in :mod:`spectrovision.data.instrument` reads more.
"""

from __future__ import annotations

import base64
import io
import zlib
from collections.abc import Callable, Iterator
from xml.sax.saxutils import quoteattr

import numpy as np

from ..data.instrument import Scans


def andi_bytes(scans: Scans, title: str = "") -> bytes:
    """An ANDI/AIA MS netCDF-3 classic file (scan_acquisition_time in seconds), written
    with scipy.io's netcdf_file."""
    from scipy.io import netcdf_file

    buffer = io.BytesIO()
    nc = netcdf_file(buffer, "w", version=1)
    nc.dataset_completeness = b"C1+C2"
    nc.ms_template_revision = b"1.0.1"
    nc.experiment_title = title.encode()
    nc.experiment_type = b"Centroided Mass Spectrum"
    nc.createDimension("scan_number", scans.n_scans)
    nc.createDimension("point_number", len(scans.mass))
    per_scan = {"scan_acquisition_time": ("d", scans.time * 60.0),
                "scan_index": ("i", scans.offsets[:-1]),
                "point_count": ("i", np.diff(scans.offsets))}
    for name, (kind, values) in per_scan.items():
        nc.createVariable(name, kind, ("scan_number",))[:] = values
    for name, values in (("mass_values", scans.mass), ("intensity_values", scans.intensity)):
        nc.createVariable(name, "d", ("point_number",))[:] = values
    nc.variables["scan_acquisition_time"].units = b"Seconds"
    nc.variables["mass_values"].units = b"M/Z"
    nc.flush()
    data = buffer.getvalue()
    nc.close()
    return data


def scan_slices(scans: Scans) -> Iterator[tuple[int, float, np.ndarray, np.ndarray]]:
    """(index, time, m/z, intensity) of each scan."""
    for i in range(scans.n_scans):
        part = slice(scans.offsets[i], scans.offsets[i + 1])
        yield i, float(scans.time[i]), scans.mass[part], scans.intensity[part]


def binary_array(values: np.ndarray, accession: str, name: str) -> str:
    """One mzML binaryDataArray: 64-bit floats, zlib-compressed, base64."""
    encoded = base64.b64encode(zlib.compress(np.asarray(values, "<f8").tobytes())).decode()
    return (f'<binaryDataArray encodedLength="{len(encoded)}">'
            '<cvParam cvRef="MS" accession="MS:1000523" name="64-bit float"/>'
            '<cvParam cvRef="MS" accession="MS:1000574" name="zlib compression"/>'
            f'<cvParam cvRef="MS" accession="{accession}" name="{name}"/>'
            f"<binary>{encoded}</binary></binaryDataArray>")


def mzml_bytes(scans: Scans, title: str = "") -> bytes:
    """An mzML 1.1 file: one MS1 centroid spectrum per scan, scan start time in minutes."""
    spectra = []
    for i, time, mass, intensity in scan_slices(scans):
        spectra.append(
            f'<spectrum index="{i}" id="scan={i + 1}" defaultArrayLength="{len(mass)}">'
            '<cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="1"/>'
            '<cvParam cvRef="MS" accession="MS:1000127" name="centroid spectrum"/>'
            '<scanList count="1"><scan><cvParam cvRef="MS" accession="MS:1000016" '
            f'name="scan start time" value="{time!r}" unitCvRef="UO" '
            'unitAccession="UO:0000031" unitName="minute"/></scan></scanList>'
            '<binaryDataArrayList count="2">'
            + binary_array(mass, "MS:1000514", "m/z array")
            + binary_array(intensity, "MS:1000515", "intensity array")
            + "</binaryDataArrayList></spectrum>\n")
    head = ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<mzML xmlns="http://psi.hupo.org/ms/mzml" version="1.1.0">\n'
            '<cvList count="2"><cv id="MS" fullName="Proteomics Standards Initiative Mass '
            'Spectrometry Ontology"/><cv id="UO" fullName="Unit Ontology"/></cvList>\n'
            f'<run id={quoteattr(title or "run")}>'
            f'<spectrumList count="{scans.n_scans}">\n')
    return (head + "".join(spectra) + "</spectrumList></run>\n</mzML>\n").encode()


def jcamp_bytes(scans: Scans, title: str = "") -> bytes:
    """A JCAMP-DX 5.01 NTUPLES file: one ``##PAGE= T=`` (minutes) per scan, its peaks as
    ``##DATA TABLE= (XY..XY), PEAKS``."""
    lines = [f"##TITLE={title}", "##JCAMP-DX=5.01", "##DATA TYPE=MASS SPECTRUM",
             "##DATA CLASS=NTUPLES", "##NTUPLES=MASS SPECTRUM",
             "##VAR_NAME=MASS, INTENSITY, RETENTION TIME", "##SYMBOL=X, Y, T",
             "##UNITS=M/Z, RELATIVE ABUNDANCE, MINUTES"]
    for _, time, mass, intensity in scan_slices(scans):
        lines += [f"##PAGE= T={time!r}", f"##NPOINTS={len(mass)}",
                  "##DATA TABLE= (XY..XY), PEAKS"]
        lines += [" ".join(f"{m!r},{y!r}" for m, y in zip(mass[k:k + 8].tolist(),
                                                          intensity[k:k + 8].tolist()))
                  for k in range(0, len(mass), 8)]
    lines += ["##END NTUPLES=MASS SPECTRUM", "##END="]
    return ("\n".join(lines) + "\n").encode()


#: format -> (writer, file extension)
WRITERS: dict[str, tuple[Callable[[Scans, str], bytes], str]] = {
    "andi": (andi_bytes, ".cdf"), "mzml": (mzml_bytes, ".mzML"), "jcamp": (jcamp_bytes, ".jdx")}
