"""Plan and the records it holds: what planning returns, not how it is computed.

A Plan keeps its decisions as bit sets over the model's tensors and builds the
per-tensor (ParamDecision) and per-statement (StatementResult) views on first use.
These types are what renderers (report.py), cost and memory estimates, application
and the linter read; the algorithm that fills them is in plan.py (make_plan), kept
apart so a reader of either need not wade through the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from freezedsl.gcpause import gc_paused
from freezedsl.planning.containers import TypeContainer
from freezedsl.planning.index import ModelIndex, dtype_info, iter_bits, mask_bits, weighted_sum
from freezedsl.syntax import ast
from freezedsl.syntax.printer import format_statement


@dataclass(frozen=True)
class StatementResult:
    number: int  # 1-based position among the program's statements
    line: int | None
    text: str
    action: str  # freeze | unfreeze | expect
    matched_tensors: int
    matched_elements: int
    decided_tensors: int
    decided_elements: int


class ParamDecision(NamedTuple):
    """One parameter tensor's decision (a NamedTuple: plans of 100k tensors stay cheap)."""

    name: str
    aliases: tuple[str, ...]
    shape: tuple[int, ...]
    numel: int
    dtype: str
    before: bool  # requires_grad before
    after: bool  # requires_grad after
    decided_by: int | None  # StatementResult.number, or None when no statement matched
    lr: ast.Factor | None = None  # from `lr` statements (for freezedsl.param_groups)
    weight_decay: ast.Factor | None = None

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class ModuleDecision:
    """A module that a `freeze stats` / `unfreeze stats` / `convert` statement decided."""

    path: str
    cls: str
    module_index: int  # position in the model's pre-order module list
    frozen: bool  # stats frozen (always True for conversions)
    decided_by: int


@dataclass(frozen=True)
class ExpectResult:
    number: int
    line: int | None
    col: int | None
    text: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class TieConflict:
    """A tied tensor whose names were decided by different statements."""

    aliases: tuple[str, ...]
    deciders: tuple[int | None, ...]  # statement number deciding each alias (None = none)
    final: bool  # requires_grad the tensor ends with


class Plan:
    """The outcome of planning a program against one model.

    Decisions are kept as bit sets over the model's tensors; the per-tensor view
    (``params``) and the per-statement counts (``statements``) are built on first use,
    so applying rules to a model with 100k tensors never pays for a report nobody reads.
    """

    def __init__(
        self,
        *,
        program: ast.Program,
        index: ModelIndex,
        before: int,
        after: int,
        rule_masks: list[tuple[int, int]],
        decided: dict[int, int],
        hyper_of: dict[str, list[ast.Factor | None]] | None,
        extra_statements: dict[int, tuple[str, int, int]],
        warnings: list[str],
        ties: list[TieConflict],
        scheduled: int,
    ) -> None:
        self.program = program
        self.model_class = index.model_class
        self.wrapper = index.wrapper
        self.warnings = warnings
        self.ties = ties
        self.scheduled = scheduled  # statements that wait for an `at epoch/step` (see freezedsl.Schedule)
        self.expectations: list[ExpectResult] = []
        self.norm_stats: list[ModuleDecision] = []
        self.conversions: list[ModuleDecision] = []
        self.type_containers: list[TypeContainer] = []  # FZ116: type atoms that match containers too
        self.reenabled: list[tuple[ast.Rule, str]] = []  # FZ117: `unfreeze all` training initially frozen tensors
        # run on every Plan.cost estimate; freezedsl.api sets FZ340 (planning never imports lint)
        self.cost_checks: tuple[Any, ...] = ()
        self._index = index
        self._before = before  # tensor masks: requires_grad before and after
        self._after = after
        self._rule_masks = rule_masks  # (statement number, tensor mask) per rule, file order
        self._decided = decided  # statement number -> tensors it decides
        self._hyper_of = hyper_of
        self._extra = extra_statements  # number -> (action, count, elements) of other statements
        self._params: list[ParamDecision] | None = None
        self._statements: list[StatementResult] | None = None

    @property
    def has_hyper(self) -> bool:
        """Whether the program sets an lr or weight decay (`plan --explain` shows them)."""
        return self._hyper_of is not None

    @property
    def _objects(self) -> list[Any]:
        return self._index.objects

    @property
    def _modules(self) -> list[Any]:
        return self._index.module_objects

    # ------------------------------------------------------------ per tensor
    @property
    def params(self) -> list[ParamDecision]:
        """One ParamDecision per tensor, in model order (tied tensors once)."""
        if self._params is None:
            with gc_paused():
                self._params = self._build_params()
        return self._params

    def _build_params(self) -> list[ParamDecision]:
        index = self._index
        n = len(index.objects)
        by = self.decided_by()
        after = mask_bits(self._after, n)
        no_hyper: list[ast.Factor | None] = [None] * n
        lrs = self._hyper_of["lr"] if self._hyper_of else no_hyper
        wds = self._hyper_of["weight_decay"] if self._hyper_of else no_hyper
        out = []
        for t, (param, aliases, numel, before) in enumerate(
            zip(index.objects, index.aliases(), index.numel, index.requires_grad)
        ):
            out.append(
                ParamDecision(
                    aliases[0],
                    aliases,
                    tuple(param.shape),
                    numel,
                    dtype_info(param.dtype)[0],
                    before,
                    bool(after[t]),
                    by[t] or None,
                    lrs[t],
                    wds[t],
                )
            )
        return out

    def decided_by(self) -> list[int]:
        """The statement number deciding each tensor (0: none matched it)."""
        out = [0] * len(self._index.objects)
        for number, mask in self._decided.items():
            for t in iter_bits(mask):
                out[t] = number
        return out

    # ------------------------------------------------------------ per statement
    @property
    def statements(self) -> list[StatementResult]:
        if self._statements is None:
            self._statements = self._build_statements()
        return self._statements

    def _build_statements(self) -> list[StatementResult]:
        numel = self._index.numel
        masks = dict(self._rule_masks)
        out: list[StatementResult] = []
        for number, st in enumerate(self.program.statements, 1):
            line = st.span.line if st.span else None
            text = format_statement(st)
            if isinstance(st, ast.Rule):
                m, d = masks[number], self._decided.get(number, 0)
                out.append(
                    StatementResult(
                        number, line, text, st.action,
                        m.bit_count(), weighted_sum(m, numel),
                        d.bit_count(), weighted_sum(d, numel),
                    )
                )
            elif number in self._extra:
                action, matched, elements = self._extra[number]
                out.append(StatementResult(number, line, text, action, matched, elements, 0, 0))
            elif isinstance(st, ast.Scheduled):
                out.append(StatementResult(number, line, text, "scheduled", 0, 0, 0, 0))
            else:
                out.append(StatementResult(number, line, text, "expect", 0, 0, 0, 0))
        return out

    # ------------------------------------------------------------ totals
    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.expectations)

    @property
    def total_elements(self) -> int:
        return sum(self._index.numel)

    @property
    def trainable_elements(self) -> int:
        return weighted_sum(self._after, self._index.numel)

    @property
    def trainable_percent(self) -> float:
        total = self.total_elements
        return 100.0 * self.trainable_elements / total if total else 0.0

    @property
    def trainable(self) -> list[str]:
        return [p.name for p in self.params if p.after]

    def cost(self, example_inputs: Any, *, dtype: str | None = None, optimizer: str | None = None) -> Any:
        """One training step's cost with this freeze and without it (see freezedsl.planning.cost)."""
        from freezedsl.planning.cost import estimate_cost

        return estimate_cost(
            self,
            self._index.module_objects[0],
            example_inputs,
            dtype=dtype,
            optimizer=optimizer,
            checks=self.cost_checks,
        )

    @property
    def frozen(self) -> list[str]:
        return [p.name for p in self.params if not p.after]

    @property
    def changed(self) -> list[ParamDecision]:
        return [p for p in self.params if p.changed]

    def state_of(self, name: str) -> bool:
        """requires_grad after the plan, looked up by any name of the parameter."""
        for p in self.params:
            if name in p.aliases:
                return p.after
        raise KeyError(name)

    # ------------------------------------------------------------ output
    def render(self, *, explain: bool = False, color: bool = False) -> str:
        from freezedsl.planning.report import render_text

        return render_text(self, explain=explain, color=color)

    def to_dict(self) -> dict[str, Any]:
        from freezedsl.planning.report import plan_to_dict

        return plan_to_dict(self)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"<freezedsl.Plan {self.program.path or '<rules>'} on {self.model_class}: {len(self._index.objects)} tensors>"
