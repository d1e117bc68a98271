"""`wirebridge doctor`: probe a Chat Completions upstream's quirks and recommend its config.

Layout, pure core apart from the shell:

    probes.py     the battery as a state machine: which request next, given the answers so far
    observe.py    raw SSE body -> the wire facts of one answer (fields, repeats, timings)
    analysis.py   probe results -> findings and the recommended `[model_providers.NAME]` table
    report.py     the findings table, the TOML text, the JSON form (imports analysis, not back)
    configfile.py `--write`: merge the table into config.toml, keeping comments (tomlkit)
    runner.py     the only I/O: httpx requests, deadlines, progress

`await diagnose(provider, model)` is the library entry point; `wirebridge doctor` the command.
"""

from .analysis import Diagnosis, Finding, Recommendation, Setting, analyse, recommend
from .configfile import merge_provider, write_provider
from .observe import ProbeResult, StreamObservation, StreamObserver
from .probes import Plan, Probe
from .report import diagnosis_json, print_report, render_toml
from .runner import diagnose, run_probes

__all__ = [
    "Diagnosis",
    "Finding",
    "Plan",
    "Probe",
    "ProbeResult",
    "Recommendation",
    "Setting",
    "StreamObservation",
    "StreamObserver",
    "analyse",
    "diagnose",
    "diagnosis_json",
    "merge_provider",
    "print_report",
    "recommend",
    "render_toml",
    "run_probes",
    "write_provider",
]
