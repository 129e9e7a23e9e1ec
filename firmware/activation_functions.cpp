#include "firmware/activation_functions.h"

namespace infsim::firmware {

void apply_activation(isa::ActFunc f, float* v, size_t n) {
  switch (f) {
    case isa::ActFunc::identity:
      return;
    case isa::ActFunc::relu:
      // max(x, 0) with NaN propagated and -0 mapped to +0.
      for (size_t i = 0; i < n; ++i) v[i] = v[i] > 0.0f ? v[i] : (v[i] != v[i] ? v[i] : 0.0f);
      return;
  }
}

}  // namespace infsim::firmware
