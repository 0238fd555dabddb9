# Stage: report (see workflow/rules/common.smk for shared input functions).
