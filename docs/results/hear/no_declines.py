"""Copies of target manifests without the targets in which the LLM declined (docs/results/hear, session 10).

    python docs/results/hear/no_declines.py exp/hear/nodecline exp/hear/targets/cuts_train/sift_s_first.jsonl.gz \
        exp/hear/targets/cuts_train/sit_sp_0.jsonl.gz
    azeros train docs/results/hear/stage2_ctc_nodecline.yaml
"""

import gzip
import json
import sys
from pathlib import Path

from azeros.selfgen.check import declines

out, *manifests = sys.argv[1:]
Path(out).mkdir(parents=True, exist_ok=True)
for manifest in manifests:
    rows = [json.loads(line) for line in gzip.open(manifest, "rt")]
    kept = [row for row in rows if not declines(row["supervisions"][0]["custom"]["response"])]
    with gzip.open(Path(out) / Path(manifest).name, "wt") as f:
        f.writelines(json.dumps(row) + "\n" for row in kept)
    print(manifest, len(rows), "->", len(kept))
