"""The sections of REPORT.md, one small renderer class each with one ``render(analysis)``.

Every sentence that states a finding is built from the numbers, and every section says in
one sentence when it has nothing to show, so a half-finished plan still reads cleanly.
:class:`Summary` is always first; :data:`SECTIONS` is the order of everything after it.
"""

from __future__ import annotations

from report.sections.cautions import Cautions
from report.sections.findings import FindingsSection, OwnersSection
from report.sections.invariants import Invariants
from report.sections.memory import MemorySection
from report.sections.offenders import AcrossRuns, LeftOut, PerRun
from report.sections.phases import PhaseSplit
from report.sections.runs import MissingRuns, Phase0Section, RunsTable
from report.sections.scaling import Scaling
from report.sections.summary import Summary
from report.sections.threads import Threads
from report.sections.trust import TrustSection

SECTIONS = (
    FindingsSection, OwnersSection, MemorySection, RunsTable, Cautions, PhaseSplit, MissingRuns, Phase0Section, AcrossRuns,
    TrustSection, Scaling, Threads, Invariants, PerRun, LeftOut,
)

__all__ = ["SECTIONS", "MemorySection", "Summary"]
