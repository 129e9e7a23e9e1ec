#!/usr/bin/python3
"""Generate every view of the ISA from isa/isa.yaml.

    gen_isa.py --cpp OUT_DIR      -> OUT_DIR/isa_gen.h, OUT_DIR/isa_gen.cpp
    gen_isa.py --python FILE      -> the compiler's Python view
    gen_isa.py --docs FILE        -> docs/isa.md
    gen_isa.py --check-docs FILE  -> exit 1 if FILE is not what --docs would write

The build runs the first two; docs/isa.md is checked in and a test keeps it
current.
"""
import argparse
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
BANNER = "Generated from isa/isa.yaml by isa/gen_isa.py. Do not edit: edit the table and rebuild."


def camel(name):
    return "".join(p.capitalize() for p in name.split("_"))


class Table:
    def __init__(self, path):
        with open(path) as f:
            t = yaml.safe_load(f)
        self.version = t["version"]
        self.word_bytes = t["word_bytes"]
        self.enums = t["enums"]
        self.enum_bits = t["enum_bits"]
        self.dtype_bytes = t["dtype_bytes"]
        self.ap = t["access_pattern"]
        self.header = t["header"]
        self.instructions = t["instructions"]
        self._check()

    def field_bits(self, f):
        kind = f["kind"]
        if "bits" in f:
            return f["bits"]
        if kind == "ap":
            return self.ap_bits()
        if kind == "sem":
            return 8
        if kind == "f32":
            return 32
        if kind.startswith("enum:"):
            return self.enum_bits
        if kind == "array4":
            return 4 * sum(self.field_bits(e) for e in f["element"])
        m = re.fullmatch(r"[ui](\d+)", kind)
        if not m:
            raise SystemExit(f"isa.yaml: unknown field kind {kind!r}")
        return int(m.group(1))

    def ap_bits(self):
        return sum(self.field_bits(f) for f in self.ap)

    def header_bits(self):
        return sum(self.field_bits(f) for f in self.header)

    def instr_bits(self, ins):
        return self.header_bits() + sum(self.field_bits(f) for f in ins["fields"])

    def _check(self):
        seen = {}
        for ins in self.instructions:
            op = ins["opcode"]
            if op in seen:
                raise SystemExit(f"isa.yaml: opcode {op} used by {seen[op]} and {ins['name']}")
            seen[op] = ins["name"]
            bits = self.instr_bits(ins)
            if bits > 8 * self.word_bytes:
                raise SystemExit(f"isa.yaml: {ins['name']} needs {bits} bits > word")
            for e in ins["engines"]:
                if e not in self.enums["engine"]["values"]:
                    raise SystemExit(f"isa.yaml: {ins['name']}: unknown engine {e}")
        for name, e in self.enums.items():
            if len(e["values"]) > (1 << self.enum_bits):
                raise SystemExit(f"isa.yaml: enum {name} too large")
        for f in self.ap:
            if f["kind"].startswith("enum:"):
                n = len(self.enums[f["kind"][5:]]["values"])
                if n > (1 << f["bits"]):
                    raise SystemExit(f"isa.yaml: ap.{f['name']} too narrow")


# ----------------------------------------------------------------------------- C++

def cpp_type(table, f):
    kind = f["kind"]
    if kind == "ap":
        return "AccessPattern"
    if kind == "sem":
        return "uint8_t"
    if kind == "f32":
        return "float"
    if kind.startswith("enum:"):
        return camel(kind[5:])
    if kind == "array4":
        return "std::array<FreeDim, 4>"
    if kind.startswith("i"):
        return "int32_t"
    return "uint32_t"


def gen_cpp_header(t):
    o = []
    w = o.append
    w(f"// {BANNER}")
    w("#pragma once")
    w("#include <array>\n#include <cstdint>\n#include <string>\n#include <string_view>\n#include <type_traits>\n#include <variant>\n")
    w("namespace infsim::isa {\n")
    w(f"constexpr unsigned kIsaVersion = {t.version};")
    w(f"constexpr unsigned kWordBytes = {t.word_bytes};")
    w("constexpr uint8_t kNoSemaphore = 255;\n")
    for name, e in t.enums.items():
        w(f"// {e['doc']}")
        w(f"enum class {camel(name)} : uint8_t {{ " + ", ".join(e["values"]) + " };")
        w(f"constexpr unsigned kNum{camel(name)} = {len(e['values'])};")
        w(f"const char* to_string({camel(name)} v);")
        w(f"bool parse(std::string_view text, {camel(name)}& out);\n")
    w("// Bytes per element of each dtype.")
    w("unsigned dtype_bytes(Dtype d);\n")
    w("struct FreeDim {")
    w("  uint32_t num = 1;  // elements")
    w("  int32_t step = 0;  // elements between consecutive indices")
    w("  bool operator==(const FreeDim& o) const { return num == o.num && step == o.step; }")
    w("};\n")
    w("// On-chip access pattern: a partition range plus up to 4 free dimensions.")
    w("struct AccessPattern {")
    for f in t.ap:
        default = " = Space::none" if f["name"] == "space" else (" = Dtype::fp32" if f["name"] == "dtype" else ("{}" if f["kind"] == "array4" else " = 0"))
        w(f"  {cpp_type(t, f)} {f['name']}{default};  // {f.get('doc', '')}")
    w("  bool operator==(const AccessPattern& o) const;")
    w("};\n")
    w("// Fields every instruction carries: semaphore wait-before and signal-after.")
    w("struct Header {")
    for f in t.header[1:]:
        default = " = kNoSemaphore" if f["kind"] == "sem" else " = 0"
        w(f"  {cpp_type(t, f)} {f['name']}{default};  // {f['doc']}")
    w("  bool operator==(const Header& o) const;")
    w("};\n")
    w("enum class Opcode : uint8_t {")
    for ins in t.instructions:
        w(f"  {ins['name']} = {ins['opcode']},")
    w("};")
    w(f"constexpr unsigned kNumOpcodes = {len(t.instructions)};")
    w("const char* to_string(Opcode op);")
    w("bool parse(std::string_view text, Opcode& out);")
    w("// Whether an engine's stream may hold this opcode.")
    w("bool engine_allowed(Opcode op, Engine e);\n")
    for ins in t.instructions:
        w(f"// {ins['name']}: {' '.join(ins['doc'].split())}")
        w(f"struct {camel(ins['name'])} {{")
        w(f"  static constexpr Opcode kOpcode = Opcode::{ins['name']};")
        w("  Header hdr;")
        for f in ins["fields"]:
            default = "" if f["kind"] == "ap" else "{}"
            w(f"  {cpp_type(t, f)} {f['name']}{default};  // {f['doc']}")
        w(f"  bool operator==(const {camel(ins['name'])}& o) const;")
        w("};\n")
    w("using Instruction = std::variant<" + ", ".join(camel(i["name"]) for i in t.instructions) + ">;\n")
    w("Opcode opcode_of(const Instruction& ins);")
    w("const Header& header_of(const Instruction& ins);")
    w("Header& header_of(Instruction& ins);")
    w("// Calls fn on every on-chip operand (absent ones included, with space none).")
    w("template <typename Fn>")
    w("void for_each_operand(const Instruction& ins, Fn&& fn) {")
    w("  std::visit([&](const auto& x) {")
    w("    using T = std::decay_t<decltype(x)>;")
    for ins in t.instructions:
        aps = [f["name"] for f in ins["fields"] if f["kind"] == "ap"]
        if not aps:
            continue
        c = camel(ins["name"])
        w(f"    if constexpr (std::is_same_v<T, {c}>) {{ " + " ".join(f"fn(x.{a});" for a in aps) + " }")
    w("  }, ins);")
    w("}")
    w("// Writes exactly kWordBytes bytes.")
    w("void encode(const Instruction& ins, uint8_t* word);")
    w("// Reads kWordBytes bytes; throws IsaError on an unknown opcode or enum value.")
    w("Instruction decode(const uint8_t* word);")
    w("// One line of assembly text, `assemble(disassemble(x)) == x`.")
    w("std::string disassemble(const Instruction& ins);")
    w("// Throws IsaError naming the offending token.")
    w("Instruction assemble(std::string_view line);\n")
    w("}  // namespace infsim::isa")
    return "\n".join(o) + "\n"


def gen_put(t, f, expr, o, indent="  "):
    """Emit code that writes field f (value expression expr) at the bit cursor."""
    kind = f["kind"]
    bits = t.field_bits(f)
    if kind == "ap":
        o.append(f"{indent}put_ap(bw, {expr});")
    elif kind == "array4":
        o.append(f"{indent}for (const auto& d : {expr}) {{")
        for e in f["element"]:
            gen_put(t, e, f"d.{e['name']}", o, indent + "  ")
        o.append(f"{indent}}}")
    elif kind == "f32":
        o.append(f"{indent}bw.put(f32_bits({expr}), 32);")
    elif kind.startswith("enum:"):
        o.append(f"{indent}bw.put(static_cast<uint64_t>({expr}), {bits});")
    elif kind.startswith("i"):
        o.append(f"{indent}bw.put_signed({expr}, {bits});")
    else:
        o.append(f"{indent}bw.put({expr}, {bits});")


def gen_get(t, f, expr, o, indent="  "):
    kind = f["kind"]
    bits = t.field_bits(f)
    if kind == "ap":
        o.append(f"{indent}{expr} = get_ap(br);")
    elif kind == "array4":
        o.append(f"{indent}for (auto& d : {expr}) {{")
        for e in f["element"]:
            gen_get(t, e, f"d.{e['name']}", o, indent + "  ")
        o.append(f"{indent}}}")
    elif kind == "f32":
        o.append(f"{indent}{expr} = bits_f32(static_cast<uint32_t>(br.get(32)));")
    elif kind.startswith("enum:"):
        en = kind[5:]
        o.append(f"{indent}{expr} = check_enum<{camel(en)}>(br.get({bits}), kNum{camel(en)}, \"{en}\");")
    elif kind.startswith("i"):
        o.append(f"{indent}{expr} = static_cast<int32_t>(br.get_signed({bits}));")
    elif kind == "sem":
        o.append(f"{indent}{expr} = static_cast<uint8_t>(br.get(8));")
    else:
        o.append(f"{indent}{expr} = static_cast<uint32_t>(br.get({bits}));")


def gen_cpp_source(t):
    o = []
    w = o.append
    w(f"// {BANNER}")
    w('#include "isa_gen.h"\n')
    w('#include "isa/isa_support.h"\n')
    w("#include <cstring>\n")
    w("namespace infsim::isa {\n")
    for name, e in t.enums.items():
        c = camel(name)
        vals = ", ".join(f'"{v}"' for v in e["values"])
        w(f"static const char* const k{c}Names[] = {{{vals}}};")
        w(f"const char* to_string({c} v) {{ return static_cast<unsigned>(v) < kNum{c} ? k{c}Names[static_cast<unsigned>(v)] : \"?\"; }}")
        w(f"bool parse(std::string_view text, {c}& out) {{")
        w(f"  for (unsigned i = 0; i < kNum{c}; ++i)")
        w(f"    if (text == k{c}Names[i]) {{ out = static_cast<{c}>(i); return true; }}")
        w("  return false;\n}\n")
    sizes = ", ".join(str(t.dtype_bytes[d]) for d in t.enums["dtype"]["values"])
    w(f"unsigned dtype_bytes(Dtype d) {{ static const unsigned k[] = {{{sizes}}}; return k[static_cast<unsigned>(d)]; }}\n")
    # AP / header equality
    ap_eq = " && ".join(f"{f['name']} == o.{f['name']}" for f in t.ap)
    w(f"bool AccessPattern::operator==(const AccessPattern& o) const {{ return {ap_eq}; }}")
    hd_eq = " && ".join(f"{f['name']} == o.{f['name']}" for f in t.header[1:])
    w(f"bool Header::operator==(const Header& o) const {{ return {hd_eq}; }}\n")
    # AP put/get
    w("void put_ap(BitWriter& bw, const AccessPattern& ap) {")
    for f in t.ap:
        gen_put(t, f, f"ap.{f['name']}", o)
    w("}\n")
    w("AccessPattern get_ap(BitReader& br) {")
    w("  AccessPattern ap;")
    for f in t.ap:
        gen_get(t, f, f"ap.{f['name']}", o)
    w("  return ap;\n}\n")
    # opcode names and engine masks
    w("const char* to_string(Opcode op) {\n  switch (op) {")
    for ins in t.instructions:
        w(f"    case Opcode::{ins['name']}: return \"{ins['name']}\";")
    w("  }\n  return \"?\";\n}\n")
    w("bool parse(std::string_view text, Opcode& out) {")
    for ins in t.instructions:
        w(f"  if (text == \"{ins['name']}\") {{ out = Opcode::{ins['name']}; return true; }}")
    w("  return false;\n}\n")
    evals = t.enums["engine"]["values"]
    w("bool engine_allowed(Opcode op, Engine e) {\n  uint32_t mask = 0;\n  switch (op) {")
    for ins in t.instructions:
        mask = sum(1 << evals.index(e) for e in ins["engines"])
        w(f"    case Opcode::{ins['name']}: mask = 0x{mask:x}u; break;")
    w("  }\n  return (mask >> static_cast<unsigned>(e)) & 1u;\n}\n")
    w("Opcode opcode_of(const Instruction& ins) {\n  return std::visit([](const auto& x) { return std::decay_t<decltype(x)>::kOpcode; }, ins);\n}")
    w("const Header& header_of(const Instruction& ins) {\n  return std::visit([](const auto& x) -> const Header& { return x.hdr; }, ins);\n}")
    w("Header& header_of(Instruction& ins) {\n  return std::visit([](auto& x) -> Header& { return x.hdr; }, ins);\n}\n")

    for ins in t.instructions:
        c = camel(ins["name"])
        eq = " && ".join(["hdr == o.hdr"] + [f"{f['name']} == o.{f['name']}" for f in ins["fields"]])
        w(f"bool {c}::operator==(const {c}& o) const {{ return {eq}; }}")
    w("")
    # encode
    w("static void put_header(BitWriter& bw, Opcode op, const Header& h) {")
    w("  bw.put(static_cast<uint64_t>(op), 8);")
    for f in t.header[1:]:
        gen_put(t, f, f"h.{f['name']}", o)
    w("}\n")
    w("static Header get_header(BitReader& br) {\n  Header h;")
    for f in t.header[1:]:
        gen_get(t, f, f"h.{f['name']}", o)
    w("  return h;\n}\n")
    w("void encode(const Instruction& ins, uint8_t* word) {")
    w("  std::memset(word, 0, kWordBytes);")
    w("  BitWriter bw(word, kWordBytes);")
    w("  put_header(bw, opcode_of(ins), header_of(ins));")
    w("  switch (opcode_of(ins)) {")
    for ins in t.instructions:
        c = camel(ins["name"])
        w(f"    case Opcode::{ins['name']}: {{")
        if ins["fields"]:
            w(f"      const auto& x = std::get<{c}>(ins);")
            for f in ins["fields"]:
                gen_put(t, f, f"x.{f['name']}", o, "      ")
        w("      break;\n    }")
    w("  }\n}\n")
    w("Instruction decode(const uint8_t* word) {")
    w("  BitReader br(word, kWordBytes);")
    w("  const uint64_t op = br.get(8);")
    w("  const Header hdr = get_header(br);")
    w("  switch (op) {")
    for ins in t.instructions:
        c = camel(ins["name"])
        w(f"    case {ins['opcode']}: {{")
        w(f"      {c} x;\n      x.hdr = hdr;")
        for f in ins["fields"]:
            gen_get(t, f, f"x.{f['name']}", o, "      ")
        w("      return x;\n    }")
    w("  }")
    w("  throw IsaError(\"unknown opcode \" + std::to_string(op));\n}\n")
    # disassemble
    w("std::string disassemble(const Instruction& ins) {")
    w("  std::string s = to_string(opcode_of(ins));")
    w("  switch (opcode_of(ins)) {")
    for ins in t.instructions:
        c = camel(ins["name"])
        w(f"    case Opcode::{ins['name']}: {{")
        if ins["fields"]:
            w(f"      const auto& x = std::get<{c}>(ins);")
            for f in ins["fields"]:
                w(f"      append_field(s, \"{f['name']}\", x.{f['name']});")
        w("      break;\n    }")
    w("  }")
    w("  append_header(s, header_of(ins));")
    w("  return s;\n}\n")
    # assemble
    w("Instruction assemble(std::string_view line) {")
    w("  AsmLine a(line);")
    w("  Opcode op;")
    w("  if (!parse(a.mnemonic(), op)) throw IsaError(\"unknown mnemonic '\" + std::string(a.mnemonic()) + \"'\");")
    w("  Instruction result;")
    w("  switch (op) {")
    for ins in t.instructions:
        c = camel(ins["name"])
        w(f"    case Opcode::{ins['name']}: {{")
        w(f"      {c} x;")
        for f in ins["fields"]:
            opt = "true" if f["kind"] == "ap" else "false"
            w(f"      a.take(\"{f['name']}\", x.{f['name']}, {opt});")
        w("      result = x;\n      break;\n    }")
    w("  }")
    w("  a.take_header(header_of(result));")
    w("  a.finish();")
    w("  return result;\n}\n")
    w("}  // namespace infsim::isa")
    return "\n".join(o) + "\n"


# -------------------------------------------------------------------------- Python

def gen_python(t):
    o = []
    w = o.append
    w(f'"""{BANNER}"""')
    w("import enum\n")
    w(f"ISA_VERSION = {t.version}")
    w(f"WORD_BYTES = {t.word_bytes}")
    w("NO_SEMAPHORE = 255\n")
    for name, e in t.enums.items():
        w(f"class {camel(name)}(enum.IntEnum):")
        w(f'    """{e["doc"]}"""')
        for i, v in enumerate(e["values"]):
            w(f"    {v} = {i}")
        w("")
    w("DTYPE_BYTES = {" + ", ".join(f"Dtype.{k}: {v}" for k, v in t.dtype_bytes.items()) + "}\n")
    w("# opcode name -> (opcode number, engines allowed, ((field, kind), ...))")
    w("OPCODES = {")
    for ins in t.instructions:
        eng = ", ".join(f"Engine.{e}" for e in ins["engines"])
        fields = ", ".join(f"({f['name']!r}, {f['kind']!r})" for f in ins["fields"])
        w(f"    {ins['name']!r}: ({ins['opcode']}, ({eng},), ({fields}{',' if len(ins['fields']) == 1 else ''})),")
    w("}")
    return "\n".join(o) + "\n"


# ---------------------------------------------------------------------------- docs

def gen_docs(t):
    o = []
    w = o.append
    w("# infsim ISA reference\n")
    w(f"<!-- {BANNER} -->\n")
    w(f"ISA version {t.version}. Every instruction is one {t.word_bytes}-byte word, little-endian, "
      "fields packed least-significant bit first in the order listed below.\n")
    w("## Common header\n")
    w("Every instruction starts with this header. An engine waits until every named semaphore "
      "has reached its value, executes, and then increments the `signal` semaphore by one.\n")
    w("| field | bits | meaning |\n|---|---|---|")
    for f in t.header:
        w(f"| `{f['name']}` | {t.field_bits(f)} | {f['doc']} |")
    w(f"\nHeader: {t.header_bits()} bits.\n")
    w("## Programs and synchronisation\n")
    w("A core's streams of one phase (run, load or send: docs/executable-format.md, section 5) form a "
      "*program*, loaded and started by the firmware as a whole. Semaphores are the core's own and order "
      "instructions within a program only: a load clears them, so no instruction waits for another "
      "program's or another core's. Between the programs of a pipeline (docs/runtime.md, section 2.8), "
      "the order of programs is the synchronisation: a stage's load program runs once, before any of its run "
      "programs; its send program, whose DMAs write the next stage's DRAM through `next` endpoints, starts "
      "after its run program has ended and only while the next stage runs nothing, so that stage's run "
      "program reads only bytes a finished send wrote. The validator checks the parts that are in the "
      "executable: one `end_of_program` per program, `next` endpoints only in send programs of stages "
      "with a successor.\n")
    w("## Access pattern\n")
    w("On-chip operands (`ap` fields) address SBUF or PSUM. Element `(p, i0, i1, i2, i3)` lives in "
      "partition `part_start + p` at byte `offset + (i0*step0 + i1*step1 + i2*step2 + i3*step3) * size(dtype)`; "
      "dimensions are listed outermost first and only the first `ndim` are used.\n")
    w("| field | bits | meaning |\n|---|---|---|")
    for f in t.ap:
        w(f"| `{f['name']}` | {t.field_bits(f)} | {f.get('doc', f['kind'])} |")
    w(f"\nAccess pattern: {t.ap_bits()} bits. Assembly syntax: "
      "`sbuf[P0:P1]@OFFSET:DTYPE[NUM:STEP,...]`, e.g. `sbuf[0:128]@512:bf16[4:64,64:1]`; `none` when absent.\n")
    w("## Enumerations\n")
    for name, e in t.enums.items():
        w(f"- **{name}** — {e['doc']} " + ", ".join(f"`{v}`={i}" for i, v in enumerate(e["values"])))
    w("- **dtype sizes** (bytes): " + ", ".join(f"`{k}`={v}" for k, v in t.dtype_bytes.items()))
    w("\n## Instructions\n")
    w("| opcode | name | engines | bits used |\n|---|---|---|---|")
    for ins in t.instructions:
        w(f"| {ins['opcode']} | [`{ins['name']}`](#{ins['name']}) | {', '.join(ins['engines'])} | {t.instr_bits(ins)} |")
    w("")
    for ins in t.instructions:
        w(f"### {ins['name']}\n")
        w(" ".join(ins["doc"].split()) + "\n")
        if ins["fields"]:
            w("| field | kind | bits | meaning |\n|---|---|---|---|")
            for f in ins["fields"]:
                w(f"| `{f['name']}` | {f['kind']} | {t.field_bits(f)} | {f['doc']} |")
            w("")
        example = " ".join([ins["name"]] + [f"{f['name']}=…" for f in ins["fields"]] + ["wait0=s0>=1", "signal=s1"])
        w(f"Assembly: `{example}`\n")
    return "\n".join(o)


def write_if_changed(path, text):
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", default=os.path.join(HERE, "isa.yaml"))
    ap.add_argument("--cpp")
    ap.add_argument("--python")
    ap.add_argument("--docs")
    ap.add_argument("--check-docs")
    a = ap.parse_args()
    t = Table(a.table)
    if a.cpp:
        write_if_changed(os.path.join(a.cpp, "isa_gen.h"), gen_cpp_header(t))
        write_if_changed(os.path.join(a.cpp, "isa_gen.cpp"), gen_cpp_source(t))
    if a.python:
        write_if_changed(a.python, gen_python(t))
    if a.docs:
        write_if_changed(a.docs, gen_docs(t))
    if a.check_docs:
        with open(a.check_docs) as f:
            if f.read() != gen_docs(t):
                print(f"{a.check_docs} is out of date: run isa/gen_isa.py --docs {a.check_docs}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
