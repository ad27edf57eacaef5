#include "lib/common/counters.h"

namespace nodedns {

double HistogramValues::Quantile(double q) const {
  uint64_t total = count();
  if (total == 0) return 0;
  double rank = q * static_cast<double>(total);
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (buckets[i] == 0 || static_cast<double>(seen + buckets[i]) < rank) {
      seen += buckets[i];
      continue;
    }
    if (i == bounds.size()) return bounds.empty() ? 0 : bounds.back();
    double lower = i == 0 ? 0 : bounds[i - 1];
    double fraction = (rank - static_cast<double>(seen)) / static_cast<double>(buckets[i]);
    return lower + (bounds[i] - lower) * fraction;
  }
  return bounds.empty() ? 0 : bounds.back();
}

}  // namespace nodedns
