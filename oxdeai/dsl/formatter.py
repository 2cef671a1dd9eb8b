"""The canonical layout of a policy.

Contract: `format_policy(ast, comments)` is idempotent and meaning-preserving:
`parse(format(x)) == parse(x)` as ASTs (spans aside), every comment is kept,
and blank lines between declarations are kept (at most one). Expressions get
the fewest parentheses that re-parse to the same tree.
"""

from __future__ import annotations

from oxdeai.dsl import ast as A
from oxdeai.dsl.parser import Comment
from oxdeai.dsl.strings import quote

WIDTH = 100
INDENT = "  "

# precedence levels, lowest first (higher binds tighter)
_IF, _OR, _AND, _NOT, _CMP, _ADD, _MUL, _NEG, _ATOM = range(9)
_LEVEL = {
    A.BinOp.OR: _OR, A.BinOp.AND: _AND,
    **{op: _CMP for op in A.COMPARE_OPS | A.STRING_OPS},
    A.BinOp.ADD: _ADD, A.BinOp.SUB: _ADD, A.BinOp.MUL: _MUL, A.BinOp.DIV: _MUL, A.BinOp.MOD: _MUL,
}


def format_expr(e: A.Expr) -> str:
    return _expr(e, _IF)


def _level(e: A.Expr) -> int:
    match e:
        case A.If():
            return _IF
        case A.Binary(op):
            return _LEVEL[op]
        case A.Not():
            return _NOT
        case A.In() | A.Matches():
            return _CMP
        case A.Neg():
            return _NEG
        case A.IntLit(value) if value < 0:
            return _NEG
    return _ATOM


def _expr(e: A.Expr, need: int) -> str:
    """Print `e` where the context needs at least precedence `need`."""
    text = _bare(e)
    return f"({text})" if _level(e) < need else text


def _bare(e: A.Expr) -> str:
    match e:
        case A.IntLit(value):
            return _int(value)
        case A.StrLit(value):
            return quote(value)
        case A.BoolLit(value):
            return "true" if value else "false"
        case A.SetLit(items):
            return "{" + ", ".join(_expr(i, _IF) for i in items) + "}"
        case A.Name(name):
            return name
        case A.Arg(name):
            return f"args.{name}"
        case A.AgentField(name):
            return f"agent.{name}"
        case A.ToolRef():
            return "tool"
        case A.Dotted(base, name):
            return f"{base}.{name}"
        case A.Neg(operand):
            return "-" + _expr(operand, _NEG)
        case A.Not(operand):
            return "not " + _expr(operand, _NOT)
        case A.Binary(op, left, right):
            level = _LEVEL[op]
            if level == _CMP:  # non-associative
                return f"{_expr(left, _ADD)} {op.value} {_expr(right, _ADD)}"
            return f"{_expr(left, level)} {op.value} {_expr(right, level + 1)}"
        case A.RangeSet(lo, hi):
            return f"{_expr(lo, _ADD)}..{_expr(hi, _ADD)}"
        case A.In(item, container, negated):
            rhs = _bare(container) if isinstance(container, A.RangeSet) else _expr(container, _ADD)
            return f"{_expr(item, _ADD)} {'not in' if negated else 'in'} {rhs}"
        case A.Matches(subject, pattern):
            return f"{_expr(subject, _ADD)} matches {quote(pattern)}"
        case A.If(cond, then, orelse):
            return f"if {_expr(cond, _IF)} then {_expr(then, _IF)} else {_expr(orelse, _IF)}"
        case A.Call(func, args):
            return f"{func}(" + ", ".join(_expr(a, _IF) for a in args) + ")"
    raise AssertionError(f"unhandled expression {e!r}")


def _int(value: int) -> str:
    """Integers of 5 digits or more get `_` every three digits."""
    sign, digits = ("-", str(-value)) if value < 0 else ("", str(value))
    if len(digits) < 5:
        return sign + digits
    groups: list[str] = []
    while digits:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    return sign + "_".join(groups)


def format_type(t: A.Type) -> str:
    match t:
        case A.IntType(None, None):
            return "int"
        case A.IntType(lo, hi):
            return f"int[{_int(lo or 0)}..{_int(hi or 0)}]"
        case A.BoolType():
            return "bool"
        case A.StringType():
            return "string"
        case A.EnumType(values):
            return " | ".join(quote(v) for v in values)
    raise AssertionError(t)


def _field(f: A.Field) -> str:
    text = f"{f.name}: {format_type(f.type)}"
    return text + (f" = {_expr(f.default, _IF)}" if f.default is not None else "")


def _patterns(patterns: tuple[A.Pattern, ...]) -> str:
    return ", ".join(p.text for p in patterns)


def _key(key: tuple[A.Expr, ...]) -> str:
    if len(key) == 1:
        return f" per {_bare(key[0])}"
    return " per (" + ", ".join(_bare(k) for k in key) + ")" if key else ""


def _clauses(head: str, clauses: list[str]) -> str:
    """`head` followed by its clauses, on one line if it fits, else one per line."""
    one = " ".join([head, *clauses])
    if len(one) <= WIDTH and "\n" not in one:
        return one
    return "\n".join([head, *(INDENT + c for c in clauses)])


def format_decl(decl: A.Decl | A.Header) -> str:
    match decl:
        case A.Header(name, version):
            return f"policy {name}" + (f" version {quote(version)}" if version is not None else "")
        case A.AgentDecl(fields):
            if not fields:
                return "agent {}"
            return "agent {\n" + "".join(f"{INDENT}{_field(f)},\n" for f in fields) + "}"
        case A.ToolDecl(name, params):
            one = f"tool {name}(" + ", ".join(_field(p) for p in params) + ")"
            if len(one) <= WIDTH:
                return one
            return f"tool {name}(\n" + "".join(f"{INDENT}{_field(p)},\n" for p in params) + ")"
        case A.ConstDecl(name, value):
            return f"const {name} = {_expr(value, _IF)}"
        case A.StateDecl(name, typ, init, key, window):
            text = f"state {name}: {format_type(typ)} = {_expr(init, _IF)}{_key(key)}"
            return text + (f" every {window}" if window else "")
        case A.EffectDecl(on_complete, patterns, when, assigns):
            head = f"effect on {'complete ' if on_complete else ''}{_patterns(patterns)}"
            body = ", ".join(f"{a.target} {a.op.value} {_expr(a.value, _IF)}" for a in assigns)
            if when is None:
                return f"{head}: {body}"
            return _clauses(head, [f"when {format_expr(when)}: {body}"])
        case A.LimitDecl():
            return _limit(decl)
        case A.RuleDecl(kind, name, patterns, when, because):
            clauses = []
            if when is not None:
                clauses.append(f"when {format_expr(when)}")
            if because is not None:
                clauses.append(f"because {quote(because)}")
            prefix = "override " if decl.override else ""
            return _clauses(f"{prefix}{kind.value} {name} on {_patterns(patterns)}", clauses)
        case A.InvariantDecl(name, expr):
            return f"invariant {name}: {format_expr(expr)}"
        case A.AssertDecl(name, mode, patterns, when):
            head = f"assert {name}: {mode.value} allow {_patterns(patterns)}"
            return _clauses(head, [f"when {format_expr(when)}"] if when is not None else [])
        case A.CheckDecl(name):
            return f"check {name}"
        case A.NonceDecl(window):
            return f"require nonce within {window}"
        case A.IdempotentDecl(patterns, window):
            return f"idempotent on {_patterns(patterns)} within {window}"
    raise AssertionError(f"unhandled declaration {decl!r}")


def _limit(decl: A.LimitDecl) -> str:
    head = f"limit {decl.name} on {_patterns(decl.patterns)}:"
    body = _limit_body(decl)
    return f"{head} {body}" if len(head) + 1 + len(body) <= WIDTH else f"{head}\n{INDENT}{body}"


def _limit_body(decl: A.LimitDecl) -> str:
    window = f" every {decl.window}" if decl.window else ""
    bound = f" <= {_expr(decl.bound, _ADD)}"
    match decl.kind:
        case A.LimitKind.SUM:
            assert decl.amount is not None
            return f"sum {_expr(decl.amount, _ADD)}{_key(decl.key)}{window}{bound}"
        case A.LimitKind.COUNT:
            return f"count{_key(decl.key)}{window}{bound}"
        case A.LimitKind.CONCURRENT:
            lease = f" lease {decl.lease}" if decl.lease else ""
            return f"concurrent{_key(decl.key)}{bound}{lease}"
    raise AssertionError(decl.kind)


def format_policy(policy: A.Policy, comments: tuple[Comment, ...], source: str) -> str:
    """The canonical text. `source` tells where blank lines separated declarations.

    A comment on a declaration's last line stays at the end of that line; any
    other comment up to the declaration goes on its own line before it.
    """
    lines = source.splitlines()
    pending = sorted(comments, key=lambda c: (c.line, c.column))
    out: list[str] = []
    cursor = 0  # the last source line already accounted for
    for item in (policy.header, *policy.decls):
        span = item.span
        leading = [c for c in pending if c.line < span.end_line]
        trailing = [c for c in pending if c.line == span.end_line]
        pending = [c for c in pending if c.line > span.end_line]
        for c in leading:
            if out and _blank_between(lines, cursor, c.line):
                out.append("")
            out.append(c.text.rstrip())
            cursor = max(cursor, c.line)
        if out and _blank_between(lines, cursor, span.line):
            out.append("")
        text = format_decl(item)
        if trailing:
            text += "  " + "  ".join(c.text.rstrip() for c in trailing)
        out.append(text)
        cursor = span.end_line
    for c in pending:
        if out and _blank_between(lines, cursor, c.line):
            out.append("")
        out.append(c.text.rstrip())
        cursor = c.line
    return "\n".join(out) + "\n"


def _blank_between(lines: list[str], after_line: int, before_line: int) -> bool:
    """Is there a blank line strictly between two 1-based line numbers?"""
    return any(not lines[i - 1].strip() for i in range(after_line + 1, before_line) if 0 < i <= len(lines))
