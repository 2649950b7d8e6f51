"""Parsing ``where`` conditions (``a=1 and (b~"x" or !c)``) and ``( ... )`` expressions
(``($n > 3 && [:len $s] = 1)``): a mixin of the parser, which provides ``peek``, ``take``,
``fail``, ``parse_atom`` and ``parse_adjacent_value``.
"""

from __future__ import annotations

from responder.sim.script.syntax import AnyOf, Concat, Condition, ConditionNode, Operation, Value

_END = ("SEMI", "RBR", "EOF", "NL", "RBRACE")
_COMPARE = {"EQ": "=", "NEQ": "!=", "TILDE": "~"}


class ExpressionParsing:
    # -- where: conditions joined by and / or / !, grouped by ( ) -------------------------------
    def _is_word(self, *texts: str) -> bool:
        tok = self.peek()
        return (tok.kind == "WORD" and tok.text in texts) or (tok.kind == "OP" and tok.text in texts)

    def parse_condition_or(self, props: frozenset[str]) -> tuple[ConditionNode, ...]:
        alternatives = [self.parse_condition_and(props, stop_at_or=True)]
        while self._is_word("or", "||"):
            self.take()
            alternatives.append(self.parse_condition_and(props, stop_at_or=True))
        return alternatives[0] if len(alternatives) == 1 else (AnyOf(tuple(alternatives)),)

    def parse_condition_and(self, props: frozenset[str], stop_at_or: bool = False) -> tuple[ConditionNode, ...]:
        parts: list[ConditionNode] = []
        while self.peek().kind not in _END and self.peek().kind != "RPAR":
            if self._is_word("and", "&&") and parts:
                self.take()
                continue
            if self._is_word("or", "||") and parts:
                if stop_at_or:
                    break
                self.take()  # at the top level `a or b` takes in everything that follows
                rest = self.parse_condition_or(props)
                return (AnyOf((tuple(parts), rest)),)
            parts.append(self.parse_condition_unary(props))
        if not parts:
            raise self.fail("syntax", self.peek())
        return tuple(parts)

    def parse_condition_unary(self, props: frozenset[str]) -> ConditionNode:
        negate = False
        if self.peek().kind == "NOT" and self.peek(1).kind == "LPAR":
            self.take()
            negate = True
        if self.peek().kind == "LPAR":
            self.take()
            group = self.parse_condition_or(props)
            if self.peek().kind != "RPAR":
                raise self.fail("syntax", self.peek())
            self.take()
            return AnyOf((group,), negate=negate)
        return self.parse_condition(props)

    def parse_condition(self, props: frozenset[str]) -> Condition:
        negate = False
        if self.peek().kind == "NOT":
            self.take()
            negate = True
        tok = self.peek()
        if tok.kind != "WORD":
            raise self.fail("syntax", tok)
        self.take()
        op_tok = self.peek()
        if op_tok.kind in _COMPARE and not op_tok.spaced:
            if tok.text not in props:
                raise self.fail("expected-end", op_tok)
            self.take()
            return Condition(tok.text, op_tok.text, self.parse_adjacent_value(), negate)
        if tok.text not in props:
            raise self.fail("expected-end", tok)
        return Condition(tok.text, "", None, negate)

    # -- ( expressions ) ----------------------------------------------------------------------
    def parse_expression(self) -> Value:
        self.take()  # (
        value = self.parse_or()
        if self.peek().kind != "RPAR":
            raise self.fail("syntax", self.peek())
        self.take()
        return value

    def parse_or(self) -> Value:
        left = self.parse_and()
        while self._is_word("||", "or"):
            self.take()
            left = Operation("||", (left, self.parse_and()))
        return left

    def parse_and(self) -> Value:
        left = self.parse_not()
        while self._is_word("&&", "and"):
            self.take()
            left = Operation("&&", (left, self.parse_not()))
        return left

    def parse_not(self) -> Value:
        if self.peek().kind == "NOT":
            self.take()
            return Operation("!", (self.parse_not(),))
        return self.parse_comparison()

    def parse_comparison(self) -> Value:
        left = self.parse_sum()
        tok = self.peek()
        if tok.kind in _COMPARE or (tok.kind == "OP" and tok.text in ("<", ">", "<=", ">=")):
            self.take()
            return Operation(_COMPARE.get(tok.kind, tok.text), (left, self.parse_sum()))
        return left

    def parse_sum(self) -> Value:
        left = self.parse_operand()
        while self.peek().kind == "WORD" and self.peek().text in (".", "+", "-"):
            op = self.take().text
            left = Operation(op, (left, self.parse_operand()))
        return left

    def parse_operand(self) -> Value:
        tok = self.peek()
        if tok.kind not in ("WORD", "STRING", "VAR", "LBR", "LPAR") or self._is_word("and", "or", ".", "+", "-"):
            raise self.fail("syntax", tok)
        parts: list[Value] = [self.parse_atom(None)]
        while self.peek().kind in ("STRING", "VAR") and not self.peek().spaced:
            parts.append(self.parse_atom(None))
        return parts[0] if len(parts) == 1 else Concat(tuple(parts))
