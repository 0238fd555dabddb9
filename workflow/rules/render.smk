# Stage: render (see workflow/rules/common.smk for shared input functions).
