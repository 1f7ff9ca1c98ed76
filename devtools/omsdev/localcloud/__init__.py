"""The Docker-free local cloud: the SAM template's resources in an AWS-compatible endpoint, its
functions run in-process and its event wiring emulated with AWS semantics (developer tooling only;
never imported by code under layers/ or functions/).

Modules: `template` (load and resolve), `provision` (Stack), `lambda_runtime` (in-process Lambda),
`event_sources` / `stream_source` / `filters` (the wiring), `cloud` (LocalCloud).
"""
