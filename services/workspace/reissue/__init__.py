"""Re-issue after an approval correction: the corrected certificates of every VIN an approval change affects.

The compliance lead starts a job from the approval's page; the job is planned
page by page from the archive's list of affected certificates
(``GET /v1/certificates?approval_key=&other_than=``), each VIN's re-issue fixed
once in MongoDB (``store``), then published to coc.builds.v1 in bounded batches
(``worker``). What is kept is enough to go on after a kill: a restarted
workspace finishes the job, no VIN twice, none missed. ``plan`` is the pure part.
"""
