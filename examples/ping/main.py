"""Sample python-script service: "pings" a host by resolving it and reporting.

Inputs arrive as --name value arguments (and as JSON in $AUTOGATE_INPUTS_FILE).
It uses pinglib, installed into the service's virtualenv from requirements.txt.
"""
import argparse
import json
import os
import time

import pinglib

parser = argparse.ArgumentParser()
parser.add_argument("--host", required=True)
parser.add_argument("--count", type=int, default=1)
parser.add_argument("--interval", type=float, default=0)  # seconds between probes
args = parser.parse_args()

for i in range(args.count):
    if i > 0:
        time.sleep(args.interval)
    print(pinglib.probe(args.host, i + 1), flush=True)
with open(os.environ["AUTOGATE_INPUTS_FILE"]) as f:
    print("inputs:", json.dumps(json.load(f), sort_keys=True))
