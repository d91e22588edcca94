"""The workflow layer: what the Snakefile, the rules and the workflow's command-line tools use and the library never
does -- benchmark config checks before any job (:mod:`.preflight`), training seeds (:mod:`.runs`), a rule's code
inputs (:mod:`.codeinputs`), job logging and run metadata (:mod:`.logs`), the train rule's job around the library's
training call (:mod:`.trainjob`), DVC stages (:mod:`.dvc`) and artifact lineage (:mod:`.lineage`).

Modules the Snakefile imports are standard library only (it plans the jobs before anything else is imported).
"""
