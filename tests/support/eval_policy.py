#!/usr/bin/env python3
"""Evaluates a MutatingAdmissionPolicy on pods as the API server would, with an independent CEL
implementation: Google's CEL C++ runtime through `cel-expr-python` (PyPI), not our code.

Reads {"policy": <MutatingAdmissionPolicy>, "cases": [{"object", "namespaceObject",
"request"}]} as JSON on stdin. Every expression (matchConditions, variables, mutations) is
compiled first; a compile error fails the run. For each case, every matchCondition is evaluated
in order ("false": the names of those that are false); when all are true the variables are
evaluated in order and the JSONPatch mutation is applied with the independent `jsonpatch`
package ("patched"). Writes the list of results as JSON on stdout.

What Kubernetes defines and this CEL runtime does not ship is declared here, as the Kubernetes
documentation defines it:
- the `JSONPatch` type (`op`, `path`, `from`, `value`: any JSON value), as a protobuf message
  whose `value` is a `google.protobuf.Value`;
- `jsonpatch.escapeKey(string)` (RFC 6901: `~` -> `~0`, `/` -> `~1`);
- the list functions of cel-go's `ext.Lists` library that Kubernetes enables (since 1.34):
  `flatten()`, `distinct()`, `sort()`, `slice(i, j)`.
The string and optional libraries are the runtime's own.

Kubernetes also type-checks list and map literals as homogeneous (`HomogeneousAggregateLiterals`),
a checker option this runtime does not offer. `mixed_literals` checks it on the runtime's own
checked AST: every list and map literal whose elements (map values; an optional entry's value
unwrapped) were given different types is reported. Variables are declared `dyn` here, where
Kubernetes infers their types, so a literal mixing a variable with a typed value is reported
too (stricter than Kubernetes).

Writes {"results": [...], "mixed_literals": [...]} as JSON on stdout.
"""
import json
import sys

import jsonpatch
from cel_expr_python import cel
from cel_expr_python.ext import ext_optional, ext_strings
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf import struct_pb2  # noqa: F401  (registers google/protobuf/struct.proto)

T = cel.Type


def jsonpatch_type():
    fdp = descriptor_pb2.FileDescriptorProto()
    fdp.name = "kubernetes_jsonpatch.proto"
    fdp.syntax = "proto3"
    fdp.dependency.append("google/protobuf/struct.proto")
    m = fdp.message_type.add()
    m.name = "JSONPatch"
    for number, name in enumerate(["op", "path", "from"], start=1):
        f = m.field.add()
        f.name, f.number, f.type, f.label = name, number, 9, 1
    f = m.field.add()
    f.name, f.number, f.type, f.label = "value", 4, 11, 1
    f.type_name = ".google.protobuf.Value"
    pool = descriptor_pool.Default()
    try:
        pool.Add(fdp)
    except TypeError:
        pass
    return pool


def distinct(items):
    out = []
    for x in items:
        if x not in out:
            out.append(x)
    return out


def flatten(items):
    out = []
    for x in items:
        out.extend(x if isinstance(x, list) else [x])
    return out


FUNCTIONS = [
    cel.FunctionDecl("jsonpatch.escapeKey", [cel.Overload(
        "jsonpatch_escape_key", T.STRING, [T.STRING],
        impl=lambda s: s.replace("~", "~0").replace("/", "~1"))]),
    cel.FunctionDecl("flatten", [cel.Overload(
        "list_flatten", T.List(T.DYN), [T.List(T.DYN)], is_member=True, impl=flatten)]),
    cel.FunctionDecl("distinct", [cel.Overload(
        "list_distinct", T.List(T.DYN), [T.List(T.DYN)], is_member=True, impl=distinct)]),
    cel.FunctionDecl("sort", [cel.Overload(
        "list_sort", T.List(T.DYN), [T.List(T.DYN)], is_member=True, impl=sorted)]),
    cel.FunctionDecl("slice", [cel.Overload(
        "list_slice", T.List(T.DYN), [T.List(T.DYN), T.INT, T.INT], is_member=True,
        impl=lambda items, i, j: items[i:j])]),
]

VARIABLES = {name: T.DYN for name in
             ["object", "oldObject", "namespaceObject", "request", "params", "variables"]}


def environment():
    return cel.NewEnv(jsonpatch_type(), variables=VARIABLES,
                      extensions=[ext_strings.ExtStrings(), ext_optional.ExtOptional()],
                      functions=FUNCTIONS)


def plain(v):
    """A CEL result as JSON: messages (JSONPatch) as dicts, integral doubles as ints."""
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if hasattr(v, "DESCRIPTOR"):
        d = {"op": v.op, "path": v.path}
        if v.HasField("value"):
            d["value"] = plain(json_format.MessageToDict(v.value))
        return d
    return v


def evaluate(expression, activation):
    """The plain value of `expression`; a CEL error (returned as a value) is raised."""
    result = expression.eval(data=activation)
    if result.type() == T.ERROR:
        raise RuntimeError(result.plain_value())
    return result.plain_value()


def main():
    data = json.load(sys.stdin)
    spec = data["policy"]["spec"]
    env = environment()
    compiled = {}
    errors = []
    expressions = ([("matchConditions", c) for c in spec.get("matchConditions", [])]
                   + [("variables", v) for v in spec.get("variables", [])]
                   + [("mutations", {"name": str(i), "expression": m["jsonPatch"]["expression"]})
                      for i, m in enumerate(spec["mutations"])])
    for where, item in expressions:
        try:
            compiled[(where, item["name"])] = env.compile(item["expression"])
        except Exception as e:  # report every expression that does not compile
            errors.append(f"{where}/{item['name']}: {e}")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(1)
    results = []
    for i, case in enumerate(data["cases"]):
        activation = {"object": case["object"], "oldObject": None,
                      "namespaceObject": case["namespaceObject"], "request": case["request"],
                      "params": None, "variables": {}}
        try:
            false = [c["name"] for c in spec.get("matchConditions", [])
                     if evaluate(compiled[("matchConditions", c["name"])], activation) is not True]
            result = {"false": false, "patched": None}
            if not false:
                variables = {}
                for v in spec.get("variables", []):
                    activation["variables"] = variables
                    variables[v["name"]] = evaluate(compiled[("variables", v["name"])],
                                                    activation)
                activation["variables"] = variables
                doc = case["object"]
                for n, _ in enumerate(spec["mutations"]):
                    ops = plain(evaluate(compiled[("mutations", str(n))], activation))
                    doc = jsonpatch.apply_patch(doc, ops, in_place=False)
                result["patched"] = doc
                result["ops"] = len(ops)
            results.append(result)
        except Exception as e:  # report which case failed, and why
            print(f"case {i}: {type(e).__name__}: {e}\n{json.dumps(case)}", file=sys.stderr)
            sys.exit(1)
    mixed = []
    for (where, name), expression in compiled.items():
        mixed.extend(f"{where}/{name}: {p}" for p in mixed_literals(expression))
    json.dump({"results": results, "mixed_literals": mixed}, sys.stdout)


def checked_ast_types():
    """Message classes for the part of cel.expr.CheckedExpr (cel-spec's checked.proto and
    syntax.proto, same field numbers) that the literal check reads; a Type is kept as its
    bytes, compared as such, except an optional's parameter."""
    fdp = descriptor_pb2.FileDescriptorProto()
    fdp.name, fdp.package, fdp.syntax = "cel_checked_subset.proto", "celcheck", "proto3"
    one, many = 1, 3
    msg_t, str_t, bytes_t, int_t, bool_t = 11, 9, 12, 3, 8

    def message(name, fields):
        m = fdp.message_type.add()
        m.name = name
        for fname, number, kind, label, type_name in fields:
            f = m.field.add()
            f.name, f.number, f.type, f.label = fname, number, kind, label
            if type_name:
                f.type_name = ".celcheck." + type_name
        return m

    message("AbstractType", [("name", 1, str_t, one, None),
                             ("parameter_types", 2, bytes_t, many, None)])
    message("TypeView", [("abstract_type", 14, msg_t, one, "AbstractType")])
    message("Expr", [("id", 2, int_t, one, None), ("select_expr", 5, msg_t, one, "Select"),
                     ("call_expr", 6, msg_t, one, "Call"), ("list_expr", 7, msg_t, one, "CreateList"),
                     ("struct_expr", 8, msg_t, one, "CreateStruct"),
                     ("comprehension_expr", 9, msg_t, one, "Comprehension")])
    message("Select", [("operand", 1, msg_t, one, "Expr")])
    message("Call", [("target", 1, msg_t, one, "Expr"), ("function", 2, str_t, one, None),
                     ("args", 3, msg_t, many, "Expr")])
    message("CreateList", [("elements", 1, msg_t, many, "Expr")])
    message("Entry", [("id", 1, int_t, one, None), ("map_key", 3, msg_t, one, "Expr"),
                      ("value", 4, msg_t, one, "Expr"), ("optional_entry", 5, bool_t, one, None)])
    message("CreateStruct", [("message_name", 1, str_t, one, None),
                             ("entries", 2, msg_t, many, "Entry")])
    message("Comprehension", [("iter_range", 2, msg_t, one, "Expr"), ("accu_init", 4, msg_t, one, "Expr"),
                              ("loop_condition", 5, msg_t, one, "Expr"),
                              ("loop_step", 6, msg_t, one, "Expr"), ("result", 7, msg_t, one, "Expr")])
    checked = message("CheckedExpr", [("type_map", 3, msg_t, many, "CheckedExpr.TypeMapEntry"),
                                      ("expr", 4, msg_t, one, "Expr")])
    entry = checked.nested_type.add()
    entry.name = "TypeMapEntry"
    entry.options.map_entry = True
    for fname, number, kind in [("key", 1, int_t), ("value", 2, bytes_t)]:
        f = entry.field.add()
        f.name, f.number, f.type, f.label = fname, number, kind, one
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName("celcheck." + n))
            for n in ["CheckedExpr", "TypeView"]}


CHECKED = None


def mixed_literals(expression):
    """The list and map literals of a compiled expression whose elements differ in type."""
    global CHECKED
    if CHECKED is None:
        CHECKED = checked_ast_types()
    wrapper = any_pb2.Any()
    wrapper.ParseFromString(expression.serialize())
    checked = CHECKED["CheckedExpr"]()
    checked.ParseFromString(wrapper.value)
    types = dict(checked.type_map)
    problems = []

    def unwrap_optional(t):
        view = CHECKED["TypeView"]()
        view.ParseFromString(t)
        params = view.abstract_type.parameter_types
        return params[0] if view.abstract_type.name == "optional_type" and params else t

    def walk(x):
        children = []
        if x.HasField("list_expr"):
            elements = list(x.list_expr.elements)
            if len({types.get(e.id) for e in elements}) > 1:
                problems.append(f"list literal (expression id {x.id}) of mixed types")
            children += elements
        if x.HasField("struct_expr"):
            s = x.struct_expr
            values = [unwrap_optional(types.get(e.value.id, b"")) if e.optional_entry
                      else types.get(e.value.id) for e in s.entries]
            if not s.message_name and len(set(values)) > 1:
                problems.append(f"map literal (expression id {x.id}) of mixed value types")
            children += [e.value for e in s.entries] + [e.map_key for e in s.entries]
        if x.HasField("select_expr"):
            children.append(x.select_expr.operand)
        if x.HasField("call_expr"):
            children += [x.call_expr.target] + list(x.call_expr.args)
        if x.HasField("comprehension_expr"):
            c = x.comprehension_expr
            children += [c.iter_range, c.accu_init, c.loop_condition, c.loop_step, c.result]
        for child in children:
            walk(child)

    walk(checked.expr)
    return problems


if __name__ == "__main__":
    main()
