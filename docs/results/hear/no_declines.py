"""Copies of target manifests without the targets in which the LLM declined (docs/results/hear, session 10;
``generate.drop_declines`` does the same inside ``azeros pipeline``).

    python docs/results/hear/no_declines.py exp/hear/nodecline exp/hear/targets/cuts_train/sift_s_first.jsonl.gz \
        exp/hear/targets/cuts_train/sit_sp_0.jsonl.gz
    azeros train docs/results/hear/stage2_ctc_nodecline.yaml
"""

import sys
from pathlib import Path

from azeros.selfgen import write_without_declines

out, *manifests = sys.argv[1:]
for manifest in manifests:
    kept, dropped = write_without_declines(manifest, Path(out) / Path(manifest).name)
    print(manifest, kept + dropped, "->", kept)
