"""Approval master data uploaded by people: the template, parsing with per-row errors, the diff, staging.

Pure: bytes in, approvals and errors out; no web framework, no network. The
routes (``services.workspace.routes.upload``) put the steps on pages: dry run,
diff, impact, publish. The template's columns come from the Approval contract
and the IVI 2.0 schema (``shared.ivi``), never from a hand-written list.
"""
