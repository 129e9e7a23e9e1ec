// _infsim: the thin binding between the Python package (compiler, runtime
// API, CLI) and the C++ ISA, executable container and SystemC chip model.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <optional>

#include "isa/executable.h"
#include "isa/isa_support.h"
#include "isa/numerics.h"
#include "sim/chip/chip.h"
#include "sim/config.h"
#include "sim/system/instance_config.h"
#include "sim/system/runtime.h"

namespace py = pybind11;
using namespace infsim;

namespace {

template <typename E>
E enum_from(const std::string& s, const char* what) {
  E e;
  if (!isa::parse(s, e)) throw py::value_error(std::string("unknown ") + what + " '" + s + "'");
  return e;
}

isa::Location location_from(const std::string& s) {
  for (auto l : {isa::Location::dram, isa::Location::sbuf, isa::Location::psum, isa::Location::next})
    if (s == isa::to_string(l)) return l;
  throw py::value_error("unknown location '" + s + "'");
}

isa::Phase phase_from(const std::string& s) {
  for (auto p : {isa::Phase::run, isa::Phase::load, isa::Phase::send})
    if (s == isa::to_string(p)) return p;
  throw py::value_error("unknown program phase '" + s + "' (run, load or send)");
}

isa::DmaEndpoint endpoint_from(const py::dict& d) {
  isa::DmaEndpoint e;
  e.loc = location_from(d["loc"].cast<std::string>());
  e.dtype = enum_from<isa::Dtype>(d["dtype"].cast<std::string>(), "dtype");
  e.address = d["address"].cast<uint64_t>();
  if (d.contains("part_start")) e.part_start = d["part_start"].cast<uint32_t>();
  e.part_count = d["part_count"].cast<uint32_t>();
  if (d.contains("part_step")) e.part_step = d["part_step"].cast<int64_t>();
  const auto dims = d["dims"].cast<std::vector<std::pair<uint32_t, int32_t>>>();
  if (dims.size() > 4) throw py::value_error("at most 4 free dimensions");
  e.ndim = static_cast<uint32_t>(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) e.dims[i] = {dims[i].first, dims[i].second};
  return e;
}

py::dict endpoint_to(const isa::DmaEndpoint& e) {
  py::dict d;
  d["loc"] = isa::to_string(e.loc);
  d["dtype"] = isa::to_string(e.dtype);
  d["address"] = e.address;
  d["part_start"] = e.part_start;
  d["part_count"] = e.part_count;
  d["part_step"] = e.part_step;
  py::list dims;
  for (uint32_t i = 0; i < e.ndim; ++i) dims.append(py::make_tuple(e.dims[i].num, e.dims[i].step));
  d["dims"] = dims;
  return d;
}

py::list schema_list(const std::vector<sim::ParamInfo>& schema) {
  py::list l;
  for (const auto& p : schema) {
    py::dict d;
    d["name"] = p.name;
    d["type"] = p.type;
    d["unit"] = p.unit;
    d["description"] = p.description;
    d["default"] = p.default_value;
    l.append(d);
  }
  return l;
}

struct Future {
  std::shared_future<sim::RequestResult> f;
};

sim::Tensors tensors_from(const std::map<std::string, py::bytes>& inputs) {
  sim::Tensors in;
  for (const auto& [k, v] : inputs) {
    const std::string s = v;
    in[k] = std::vector<uint8_t>(s.begin(), s.end());
  }
  return in;
}

py::dict request_dict(const sim::RequestResult& r) {
  py::dict d;
  d["id"] = r.id;
  d["model"] = r.model;
  d["replica"] = r.replica;
  d["status"] = sim::status_name(r.status);
  d["message"] = r.message;
  d["arrival_s"] = r.arrival_s;
  d["start_s"] = r.start_s;
  d["input_done_s"] = r.input_done_s;
  d["device_done_s"] = r.device_done_s;
  d["end_s"] = r.end_s;
  d["device_cycles"] = r.device_cycles;
  d["host_s"] = r.host_s;
  d["stage_cycles"] = r.stage_cycles;
  py::dict outs;
  for (const auto& [name, bytes] : r.outputs)
    outs[py::str(name)] = py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  d["outputs"] = outs;
  return d;
}

py::list counter_list(const std::vector<sim::CounterValue>& cs) {
  py::list l;
  for (const auto& c : cs) l.append(py::make_tuple(c.path, c.name, c.unit, c.description, c.value));
  return l;
}

sim::LoadOptions load_options(const std::string& name, const std::vector<uint32_t>& groups, bool timing_only,
                              double timeout_s, uint32_t queue_depth) {
  sim::LoadOptions o;
  o.name = name;
  o.groups = groups;
  o.timing_only = timing_only;
  o.timeout_s = timeout_s;
  o.queue_depth = queue_depth;
  return o;
}

// A Python callable as a bundle step callback, run on the simulation thread:
// the GIL is taken for the call, and for the callable's last reference.
std::function<sim::Tensors(size_t, const sim::Tensors&)> python_step(py::function f) {
  auto held = std::shared_ptr<py::function>(new py::function(std::move(f)), [](py::function* p) {
    py::gil_scoped_acquire gil;
    delete p;
  });
  return [held](size_t step, const sim::Tensors& values) {
    py::gil_scoped_acquire gil;
    py::dict d;
    for (const auto& [k, v] : values) d[py::str(k)] = py::bytes(reinterpret_cast<const char*>(v.data()), v.size());
    py::object out;
    try {
      out = (*held)(step, d);
    } catch (py::error_already_set& e) {
      throw sim::RunError(e.what());
    }
    return tensors_from(out.cast<std::map<std::string, py::bytes>>());
  };
}

// An instance with its chips' configuration: `config` overrides the instance file's chip.
std::pair<sim::InstanceConfig, sim::ChipConfig> instance_for(const std::string& instance, const std::string& config) {
  auto icfg = sim::InstanceConfig::named(instance);
  if (!config.empty()) icfg.chip = config;
  return {icfg, sim::ChipConfig::named(icfg.chip)};
}

}  // namespace

// libsystemc's main() wants an sc_main; Python is the main program here and
// elaborates the chip itself, so this is never called.
extern "C" __attribute__((visibility("default"))) int sc_main(int, char**) { return 0; }

PYBIND11_MODULE(_infsim, m) {
  m.doc() = "infsim core: ISA, executable container and the SystemC chip model";

  py::register_exception<isa::IsaError>(m, "IsaError", PyExc_ValueError);
  py::register_exception<isa::FormatError>(m, "FormatError", PyExc_ValueError);
  py::register_exception<sim::ConfigError>(m, "ConfigError", PyExc_ValueError);
  py::register_exception<sim::RunError>(m, "RunError", PyExc_RuntimeError);

  m.attr("ISA_VERSION") = isa::kIsaVersion;
  m.attr("WORD_BYTES") = isa::kWordBytes;
  m.attr("FORMAT_VERSION") = isa::kFormatVersion;
  m.attr("FABRIC_BASE") = isa::kFabricBase;  // DRAM endpoint address of chip c's byte a: FABRIC_BASE + c * CHIP_WINDOW + a
  m.attr("CHIP_WINDOW") = isa::kChipWindow;
  m.attr("MAX_PIPELINE_CORES") = isa::kMaxPipelineCores;

  m.def(
      "assemble",
      [](const std::string& line) {
        std::array<uint8_t, isa::kWordBytes> w;
        isa::encode(isa::assemble(line), w.data());
        return py::bytes(reinterpret_cast<const char*>(w.data()), w.size());
      },
      py::arg("line"), "Encodes one line of assembly into an instruction word.");
  m.def(
      "disassemble",
      [](const py::bytes& word) {
        const std::string w = word;
        if (w.size() != isa::kWordBytes) throw py::value_error("an instruction word is " + std::to_string(isa::kWordBytes) + " bytes");
        return isa::disassemble(isa::decode(reinterpret_cast<const uint8_t*>(w.data())));
      },
      py::arg("word"), "Decodes an instruction word into one line of assembly.");

  m.def(
      "convert",
      [](const py::bytes& data, const std::string& src, const std::string& dst) {
        const std::string in = data;
        const auto s = enum_from<isa::Dtype>(src, "dtype"), d = enum_from<isa::Dtype>(dst, "dtype");
        if (in.size() % isa::dtype_bytes(s)) throw py::value_error("data is not a whole number of elements");
        const size_t n = in.size() / isa::dtype_bytes(s);
        std::string out(n * isa::dtype_bytes(d), '\0');
        const auto* ip = reinterpret_cast<const uint8_t*>(in.data());
        auto* op = reinterpret_cast<uint8_t*>(out.data());
        for (size_t i = 0; i < n; ++i)
          numerics::store(d, op, static_cast<ptrdiff_t>(i), numerics::load(s, ip, static_cast<ptrdiff_t>(i)));
        return py::bytes(out);
      },
      py::arg("data"), py::arg("src"), py::arg("dst"),
      "Converts packed elements between dtypes exactly as the device does (round to nearest even).");
  m.def(
      "config",
      [](const std::string& name) {
        const auto c = sim::ChipConfig::named(name);
        py::dict d;
        for (const auto& [k, v] : sim::param_values(c)) d[py::str(k)] = v;
        return d;
      },
      py::arg("name_or_path"), "Parameters of a chip configuration (\"inf1\", \"inf2\" or a YAML path), as text.");
  m.def(
      "param_schema",
      [] { return schema_list(sim::param_schema()); },
      "The configuration schema: every parameter with type, unit, default and description.");

  py::class_<isa::Executable>(m, "Executable", "An executable (.infx): code, DMA descriptors, weights, tensors.")
      .def(py::init<>())
      .def_readwrite("metadata_json", &isa::Executable::metadata_json)
      .def_readwrite("num_cores", &isa::Executable::num_cores)
      .def_readwrite("pipeline", &isa::Executable::pipeline,
                     "One pipeline stage per core: runs on any consecutive cores, across chips")
      .def(
          "add_tensor",
          [](isa::Executable& e, const std::string& name, const std::string& kind, const std::string& dtype,
             const std::vector<int64_t>& shape, uint32_t core, uint64_t dram_offset) {
            isa::TensorDesc t;
            t.name = name;
            if (kind != "input" && kind != "output") throw py::value_error("tensor kind must be input or output");
            t.kind = kind == "input" ? isa::TensorKind::input : isa::TensorKind::output;
            t.dtype = enum_from<isa::Dtype>(dtype, "dtype");
            t.shape = shape;
            t.core = core;
            t.dram_offset = dram_offset;
            e.tensors.push_back(std::move(t));
          },
          py::arg("name"), py::arg("kind"), py::arg("dtype"), py::arg("shape"), py::arg("core"), py::arg("dram_offset"))
      .def(
          "add_constant",
          [](isa::Executable& e, uint32_t core, uint64_t dram_offset, const py::bytes& data) {
            const std::string s = data;
            e.constants.push_back({core, dram_offset, std::vector<uint8_t>(s.begin(), s.end())});
          },
          py::arg("core"), py::arg("dram_offset"), py::arg("data"))
      .def(
          "add_dma",
          [](isa::Executable& e, const py::dict& src, const py::dict& dst) {
            e.dma.push_back({endpoint_from(src), endpoint_from(dst)});
            return e.dma.size() - 1;
          },
          py::arg("src"), py::arg("dst"), "Appends a DMA descriptor; returns its index.")
      .def(
          "add_stream",
          [](isa::Executable& e, uint32_t core, const std::string& engine, const std::vector<std::string>& lines,
             const std::vector<uint32_t>& source_op, const std::string& phase) {
            isa::Stream s;
            s.core = core;
            s.phase = phase_from(phase);
            s.engine = enum_from<isa::Engine>(engine, "engine");
            if (source_op.size() != lines.size()) throw py::value_error("one source op per instruction");
            for (size_t i = 0; i < lines.size(); ++i) {
              try {
                s.instructions.push_back(isa::assemble(lines[i]));
              } catch (const isa::IsaError& err) {
                throw isa::IsaError(fmt::format("core {} {} line {}: {} in '{}'", core, engine, i, err.what(), lines[i]));
              }
            }
            s.source_op = source_op;
            e.streams.push_back(std::move(s));
          },
          py::arg("core"), py::arg("engine"), py::arg("lines"), py::arg("source_op"), py::arg("phase") = "run",
          "Assembles one engine's instruction stream of one of the core's programs (run, load, send).")
      .def(
          "add_core",
          [](isa::Executable& e, const isa::Executable& o, uint32_t src_core, uint32_t dst_core) {
            // Descriptors and source ops are appended, and the instructions' indices moved with them.
            const uint32_t desc0 = static_cast<uint32_t>(e.dma.size());
            const uint32_t op0 = static_cast<uint32_t>(e.source_ops.size());
            e.dma.insert(e.dma.end(), o.dma.begin(), o.dma.end());
            e.source_ops.insert(e.source_ops.end(), o.source_ops.begin(), o.source_ops.end());
            for (auto t : o.tensors)
              if (t.core == src_core) t.core = dst_core, e.tensors.push_back(std::move(t));
            for (auto c : o.constants)
              if (c.core == src_core) c.core = dst_core, e.constants.push_back(std::move(c));
            for (auto s : o.streams) {
              if (s.core != src_core) continue;
              s.core = dst_core;
              for (auto& ins : s.instructions) {
                if (auto* x = std::get_if<isa::DmaCopy>(&ins)) x->desc += desc0;
                if (auto* x = std::get_if<isa::DmaGather>(&ins)) x->desc += desc0;
              }
              for (auto& i : s.source_op) i += op0;
              e.streams.push_back(std::move(s));
            }
            e.num_cores = std::max(e.num_cores, dst_core + 1);
          },
          py::arg("other"), py::arg("src_core"), py::arg("dst_core"),
          "Appends executable `other`'s core src_core (tensors, weights, descriptors, programs) as core dst_core.")
      .def_readwrite("source_ops", &isa::Executable::source_ops)
      .def_property_readonly("tensors",
                             [](const isa::Executable& e) {
                               py::list l;
                               for (const auto& t : e.tensors) {
                                 py::dict d;
                                 d["name"] = t.name;
                                 d["kind"] = t.kind == isa::TensorKind::input ? "input" : "output";
                                 d["dtype"] = isa::to_string(t.dtype);
                                 d["shape"] = t.shape;
                                 d["core"] = t.core;
                                 d["dram_offset"] = t.dram_offset;
                                 l.append(d);
                               }
                               return l;
                             })
      .def_property_readonly("constants",
                             [](const isa::Executable& e) {
                               py::list l;
                               for (const auto& c : e.constants) l.append(py::make_tuple(c.core, c.dram_offset, c.bytes.size()));
                               return l;
                             })
      .def_property_readonly("dma",
                             [](const isa::Executable& e) {
                               py::list l;
                               for (const auto& d : e.dma) l.append(py::make_tuple(endpoint_to(d.src), endpoint_to(d.dst)));
                               return l;
                             })
      .def("describe_dma",
           [](const isa::Executable& e, size_t i) {
             if (i >= e.dma.size()) throw py::index_error("no such descriptor");
             return isa::describe(e.dma[i].src) + " -> " + isa::describe(e.dma[i].dst);
           })
      .def_property_readonly("streams",
                             [](const isa::Executable& e) {
                               py::list l;
                               for (const auto& s : e.streams) {
                                 if (s.phase != isa::Phase::run) continue;
                                 py::list lines, ops;
                                 for (size_t i = 0; i < s.instructions.size(); ++i) {
                                   lines.append(isa::disassemble(s.instructions[i]));
                                   ops.append(s.source_op[i]);
                                 }
                                 l.append(py::make_tuple(s.core, isa::to_string(s.engine), lines, ops));
                               }
                               return l;
                             },
                             "(core, engine, disassembly lines, source op index per line) per run-program stream")
      .def_property_readonly("all_streams",
                             [](const isa::Executable& e) {
                               py::list l;
                               for (const auto& s : e.streams) {
                                 py::list lines, ops;
                                 for (size_t i = 0; i < s.instructions.size(); ++i) {
                                   lines.append(isa::disassemble(s.instructions[i]));
                                   ops.append(s.source_op[i]);
                                 }
                                 l.append(py::make_tuple(s.core, isa::to_string(s.phase), isa::to_string(s.engine),
                                                         lines, ops));
                               }
                               return l;
                             },
                             "(core, phase, engine, disassembly lines, source op index per line) per stream")
      .def("serialize",
           [](const isa::Executable& e) {
             const auto b = e.serialize();
             return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
           })
      .def_static("deserialize",
                  [](const py::bytes& data) {
                    const std::string s = data;
                    return isa::Executable::deserialize(std::vector<uint8_t>(s.begin(), s.end()));
                  })
      .def("save", &isa::Executable::save, py::arg("path"))
      .def_static("load", &isa::Executable::load, py::arg("path"), "Reads and checks a .infx file; raises FormatError.")
      .def(
          "validate",
          [](const isa::Executable& e, const std::string& config) { isa::validate(e, sim::ChipConfig::named(config).limits()); },
          py::arg("config") = "inf1", "Checks the executable against a chip configuration; raises FormatError.");

  // ---- instances and the runtime
  m.def(
      "instance_config",
      [](const std::string& name) {
        py::dict d;
        for (const auto& [k, v] : sim::param_values(sim::InstanceConfig::named(name))) d[py::str(k)] = v;
        return d;
      },
      py::arg("name_or_path"), "Parameters of an instance (\"inf1.xlarge\" ... or a YAML path), as text.");
  m.def("instances", &sim::InstanceConfig::bundled, "Names of the bundled instance files.");
  m.def(
      "instance_param_schema",
      [] { return schema_list(sim::instance_param_schema()); },
      "The instance schema: every parameter with type, unit, default and description.");

  py::class_<Future>(m, "Future", "A request's answer, set once by the simulation thread.")
      .def("done", [](const Future& f) { return f.f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; })
      .def(
          "result",
          [](const Future& f, std::optional<double> timeout) {
            {
              py::gil_scoped_release release;
              if (timeout) {
                if (f.f.wait_for(std::chrono::duration<double>(*timeout)) != std::future_status::ready)
                  throw py::value_error("no answer within the wall-clock timeout");
              } else {
                f.f.wait();
              }
            }
            return request_dict(f.f.get());
          },
          py::arg("timeout") = py::none(), "Waits for the answer (wall-clock timeout in seconds); returns a dict.");

  py::class_<sim::Runtime, std::unique_ptr<sim::Runtime, py::nodelete>>(
      m, "Runtime", "The runtime of this process's simulated instance (one per process; see docs/runtime.md).")
      .def_static(
          "get",
          [](const std::string& instance, const std::string& config) {
            const auto [icfg, ccfg] = instance_for(instance, config);
            py::gil_scoped_release release;
            return &sim::Runtime::get(icfg, ccfg);
          },
          py::arg("instance") = "inf1.xlarge", py::arg("config") = "", py::return_value_policy::reference,
          "The process's runtime; the first call elaborates the instance. config: chip configuration (default: the "
          "instance file's).")
      .def_static(
          "can_run",
          [](const std::string& instance, const std::string& config) {
            const auto [icfg, ccfg] = instance_for(instance, config);
            return sim::Runtime::can_run(icfg, ccfg);
          },
          py::arg("instance") = "inf1.xlarge", py::arg("config") = "")
      .def_property_readonly("num_cores", &sim::Runtime::num_cores)
      .def_property_readonly("instance", [](const sim::Runtime& r) { return r.instance_config().name; })
      .def_property_readonly("chip_config", [](const sim::Runtime& r) { return r.chip_config().name; })
      .def(
          "load",
          [](sim::Runtime& r, const isa::Executable& exe, const std::vector<uint32_t>& groups, const std::string& name,
             bool timing_only, double timeout_s, uint32_t queue_depth, uint32_t batch, double max_delay_s) {
            sim::LoadOptions o = load_options(name, groups, timing_only, timeout_s, queue_depth);
            o.batch = batch;
            o.max_delay_s = max_delay_s;
            py::gil_scoped_release release;
            return r.load(exe, o);
          },
          py::arg("executable"), py::arg("groups"), py::arg("name") = "model", py::arg("timing_only") = false,
          py::arg("timeout_s") = 1.0, py::arg("queue_depth") = 4096, py::arg("batch") = 1, py::arg("max_delay_s") = 0.0,
          "Loads a model: one replica per first core in `groups` (global core numbers). Returns its id.")
      .def(
          "load_bundle",
          [](sim::Runtime& r, const py::list& steps, const std::map<std::string, uint64_t>& inputs,
             const std::vector<std::string>& outputs, py::function host, py::function device_inputs,
             const std::vector<uint32_t>& groups, const std::string& name, bool timing_only, double timeout_s,
             uint32_t queue_depth) {
            sim::BundleSpec spec;
            for (const auto& s : steps) {
              const auto t = s.cast<py::tuple>();
              sim::BundleSpec::Step st;
              if (!t[0].is_none()) st.exe = std::make_shared<const isa::Executable>(t[0].cast<isa::Executable>());
              st.host_seconds = t[1].cast<double>();
              spec.steps.push_back(std::move(st));
            }
            spec.inputs = inputs;
            spec.outputs = outputs;
            spec.host = python_step(host);
            spec.device_inputs = python_step(device_inputs);
            const sim::LoadOptions o = load_options(name, groups, timing_only, timeout_s, queue_depth);
            py::gil_scoped_release release;
            return r.load_bundle(std::move(spec), o);
          },
          py::arg("steps"), py::arg("inputs"), py::arg("outputs"), py::arg("host"), py::arg("device_inputs"),
          py::arg("groups"), py::arg("name") = "bundle", py::arg("timing_only") = false, py::arg("timeout_s") = 1.0,
          py::arg("queue_depth") = 4096,
          "Loads a bundle: steps = [(executable, 0) | (None, host_seconds)]; host(step, values) and "
          "device_inputs(step, values) map {name: bytes} to {name: bytes} on the simulation thread.")
      .def(
          "unload",
          [](sim::Runtime& r, int32_t id) {
            py::gil_scoped_release release;
            r.unload(id);
          },
          py::arg("model"), "Unloads after the queued requests are answered.")
      .def(
          "swap",
          [](sim::Runtime& r, int32_t old_id, int32_t new_id) {
            py::gil_scoped_release release;
            r.swap(old_id, new_id);
          },
          py::arg("old"), py::arg("new"), "Blue/green: requests to `old` go to `new` from now on; `old` drains and unloads.")
      .def(
          "submit",
          [](sim::Runtime& r, int32_t id, const std::map<std::string, py::bytes>& inputs, bool keep_outputs) {
            auto in = tensors_from(inputs);
            py::gil_scoped_release release;
            return Future{r.submit(id, std::move(in), keep_outputs)};
          },
          py::arg("model"), py::arg("inputs"), py::arg("keep_outputs") = true, "Submits one request; returns a Future.")
      .def(
          "submit_all",
          [](sim::Runtime& r, int32_t id, const std::vector<std::map<std::string, py::bytes>>& inputs, bool keep_outputs) {
            std::vector<sim::Tensors> in;
            for (const auto& i : inputs) in.push_back(tensors_from(i));
            std::vector<std::shared_future<sim::RequestResult>> fs;
            {
              py::gil_scoped_release release;
              fs = r.submit_all(id, std::move(in), keep_outputs);
            }
            std::vector<Future> out;
            for (auto& f : fs) out.push_back(Future{f});
            return out;
          },
          py::arg("model"), py::arg("inputs"), py::arg("keep_outputs") = true,
          "Submits several requests that arrive at the same simulated time; returns their Futures.")
      .def(
          "run_workload",
          [](sim::Runtime& r, const py::list& loads, double sample_period_s) {
            sim::Workload w;
            w.sample_period_s = sample_period_s;
            for (const auto& item : loads) {
              const py::dict d = item.cast<py::dict>();
              sim::Load l;
              l.model = d["model"].cast<int32_t>();
              l.inputs = tensors_from(d["inputs"].cast<std::map<std::string, py::bytes>>());
              if (d.contains("workers")) l.workers = d["workers"].cast<uint32_t>();
              if (d.contains("rate")) l.rate = d["rate"].cast<double>();
              if (d.contains("trace")) l.trace = d["trace"].cast<std::vector<double>>();
              if (d.contains("requests")) l.requests = d["requests"].cast<uint64_t>();
              if (d.contains("duration_s")) l.duration_s = d["duration_s"].cast<double>();
              if (d.contains("seed")) l.seed = d["seed"].cast<uint64_t>();
              if (d.contains("keep_outputs")) l.keep_outputs = d["keep_outputs"].cast<bool>();
              w.loads.push_back(std::move(l));
            }
            sim::Workload done;
            {
              py::gil_scoped_release release;
              done = r.run_workload(std::move(w));
            }
            py::dict out;
            out["start_s"] = done.start_s;
            out["end_s"] = done.end_s;
            py::list results;
            for (const auto& q : done.results) results.append(request_dict(q));
            out["results"] = results;
            py::list samples;
            for (const auto& [t, values] : done.samples) samples.append(py::make_tuple(t, values));
            out["samples"] = samples;
            return out;
          },
          py::arg("loads"), py::arg("sample_period_s") = 0.0,
          "Runs load generators in simulated time: a list of {model, inputs, workers | rate | trace, requests | "
          "duration_s, seed, keep_outputs}. Returns {start_s, end_s, results}.")
      .def(
          "counters",
          [](sim::Runtime& r) {
            std::vector<sim::CounterValue> cs;
            {
              py::gil_scoped_release release;
              cs = r.counters();
            }
            return counter_list(cs);
          },
          "Every counter of the instance: (path, name, unit, description, value).")
      .def(
          "start_trace",
          [](sim::Runtime& r, uint64_t limit) {
            py::gil_scoped_release release;
            r.start_trace(limit);
          },
          py::arg("limit") = 1000000, "Records instruction and semaphore-wait events on every core, at most `limit`.")
      .def(
          "stop_trace",
          [](sim::Runtime& r) {
            std::unique_ptr<traces::Recorder> rec;
            {
              py::gil_scoped_release release;
              rec = r.stop_trace();
            }
            py::list l;
            auto end = [](uint32_t e) { return e == traces::kHostEnd ? std::string("host") : fmt::format("chip{}", e); };
            for (const auto& e : rec->events()) {
              if (e.kind == traces::EventKind::link_transfer)
                l.append(py::make_tuple(e.start_fs, e.end_fs, end(e.chip), end(e.core), "link", e.bytes, "link_transfer"));
              else
                l.append(py::make_tuple(e.start_fs, e.end_fs, e.chip, e.core,
                                        isa::to_string(static_cast<isa::Engine>(e.engine)), e.pc,
                                        e.kind == traces::EventKind::instruction ? "instruction" : "semaphore_wait",
                                        isa::to_string(static_cast<isa::Phase>(e.phase))));
            }
            py::dict tracks;  // name -> [(bin start fs, amount)]
            for (size_t i = 0; i < rec->tracks().size(); ++i) {
              py::list bins;
              for (const auto& [bin, amount] : rec->bins()[i]) bins.append(py::make_tuple(bin * rec->kBinFs, amount));
              tracks[py::str(rec->tracks()[i])] = bins;
            }
            return py::make_tuple(l, rec->dropped(), tracks, traces::Recorder::kBinFs);
          },
          "Stops recording; returns ([(start_fs, end_fs, chip, core, engine, pc, kind, phase)], events dropped, "
          "{counter track: [(bin start fs, bytes)]}, bin width fs); a link transfer is (start_fs, end_fs, from, to, "
          "\"link\", bytes, \"link_transfer\").")
      .def("used_cores",
           [](sim::Runtime& r) {
             py::gil_scoped_release release;
             return r.used_cores();
           },
           "Global core numbers held by loaded models.")
      .def("models",
           [](sim::Runtime& r) {
             py::gil_scoped_release release;
             return r.models();
           },
           "Loaded models: id -> name.")
      .def("now_s", [](sim::Runtime& r) {
        py::gil_scoped_release release;
        return r.now_s();
      });

  m.def(
      "can_run_here",
      [](const std::string& config, const std::string& instance) {
        const auto [icfg, ccfg] = instance_for(instance, config);
        return sim::Runtime::can_run(icfg, ccfg);
      },
      py::arg("config"), py::arg("instance") = "inf1.xlarge",
      "Whether this process can simulate `config` on `instance`: SystemC elaborates one instance per process.");
  m.def(
      "run",
      [](const isa::Executable& exe, const std::map<std::string, py::bytes>& inputs, const std::string& config,
         bool timing_only, const std::string& instance) {
        auto in = tensors_from(inputs);
        const auto [icfg, ccfg] = instance_for(instance, config);
        sim::Runtime::Solo s;
        {
          py::gil_scoped_release release;
          auto& rt = sim::Runtime::get(icfg, ccfg);
          s = rt.run_solo(exe, std::move(in), timing_only);
        }
        py::dict d = request_dict(s.result);
        d["total_cycles"] = s.result.device_cycles;
        d["simulated_seconds"] = s.result.device_cycles * ccfg.period_ps(isa::Engine::tensor) * 1e-12;
        d["latency_s"] = s.result.end_s - s.result.arrival_s;
        d["counters"] = counter_list(s.counters);
        return d;
      },
      py::arg("executable"), py::arg("inputs"), py::arg("config") = "inf1", py::arg("timing_only") = false,
      py::arg("instance") = "inf1.xlarge",
      "Runs one request alone on core 0 of the process's instance (loaded, run, unloaded). Inputs and outputs are "
      "raw little-endian bytes keyed by tensor name. Returns {outputs, status, total_cycles, simulated_seconds, "
      "latency_s, counters, ...}. timing_only: the same cycles and counters without computing values.");
}
