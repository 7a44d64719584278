#!/usr/bin/env python3
"""Regenerates builder/src/sandbox/seccomp/profile.json, rbuild's copy of
Docker's default seccomp profile, from moby's profiles/seccomp/default.json.

    scripts/seccomp-profile.py path/to/default.json "moby/profiles v0.2.3" > \
        builder/src/sandbox/seccomp/profile.json

rbuild keeps the profile in a schema of its own (see the loader,
builder/src/sandbox/seccomp/mod.rs): the same syscalls, argument conditions,
errnos and conditions on architecture, capabilities and kernel version,
written out so that a diff against a new moby release reads plainly.
"""
import json
import sys

ERRNO_NAMES = {1: "EPERM", 38: "ENOSYS"}
OPS = {
    "SCMP_CMP_NE": "ne",
    "SCMP_CMP_LT": "lt",
    "SCMP_CMP_LE": "le",
    "SCMP_CMP_EQ": "eq",
    "SCMP_CMP_GE": "ge",
    "SCMP_CMP_GT": "gt",
    "SCMP_CMP_MASKED_EQ": "masked_eq",
}


def action(rule):
    act = rule["action"]
    if act == "SCMP_ACT_ALLOW":
        return {"action": "allow"}
    if act == "SCMP_ACT_ERRNO":
        return {"action": "errno", "errno": ERRNO_NAMES[rule.get("errnoRet", 1)]}
    raise SystemExit(f"unsupported action {act} for {rule['names']}")


def arg(a):
    op = OPS[a["op"]]
    if op == "masked_eq":
        # moby: value is the mask, valueTwo the value the masked argument must equal.
        return {"arg": a["index"], "op": op, "mask": a["value"], "value": a.get("valueTwo", 0)}
    return {"arg": a["index"], "op": op, "value": a["value"]}


def condition(c):
    out = {}
    if c.get("arches"):
        out["arch"] = c["arches"]
    if c.get("caps"):
        out["caps"] = c["caps"]
    if c.get("minKernel"):
        out["kernel_at_least"] = c["minKernel"]
    return out


def main():
    src, version = sys.argv[1], sys.argv[2]
    moby = json.load(open(src))
    assert moby["defaultAction"] == "SCMP_ACT_ERRNO"
    arches = {}
    for a in moby["archMap"]:
        arches[a["architecture"]] = a["subArchitectures"] or []
    rules = []
    for r in moby["syscalls"]:
        rule = {"syscalls": r["names"]}
        rule.update(action(r))
        if r.get("args"):
            rule["args"] = [arg(a) for a in r["args"]]
        if r.get("includes") and condition(r["includes"]):
            rule["only_if"] = condition(r["includes"])
        if r.get("excludes") and condition(r["excludes"]):
            rule["not_if"] = condition(r["excludes"])
        if r.get("comment"):
            rule["why"] = r["comment"]
        rules.append(rule)
    profile = {
        "follows": version,
        "default_errno": ERRNO_NAMES[moby.get("defaultErrnoRet", 1)],
        "arches": arches,
        "rules": rules,
    }
    json.dump(profile, sys.stdout, indent=1)
    sys.stdout.write("\n")


main()
