// The scalar engine's function tables, as the device firmware provides them.
// Each function maps an FP32 input to an FP32 output; the scalar engine
// applies it as func(in * scale + bias). identity and relu are exact.
#pragma once

#include <cstddef>

#include "isa_gen.h"

namespace infsim::firmware {

// Applies f to n values in place.
void apply_activation(isa::ActFunc f, float* v, size_t n);

}  // namespace infsim::firmware
