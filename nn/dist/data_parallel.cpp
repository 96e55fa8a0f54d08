#include "maxgrad/nn/dist/data_parallel.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

namespace mg::dist {

namespace {

// The bytes of a contiguous tensor's elements.
char* bytes_of(const Tensor& t) {
  return static_cast<char*>(t.impl().storage->data()) + t.offset() * static_cast<int64_t>(itemsize(t.dtype()));
}
int64_t nbytes(const Tensor& t) { return t.numel() * static_cast<int64_t>(itemsize(t.dtype())); }

}  // namespace

void broadcast_tensors(ProcessGroup& group, const std::vector<Tensor>& tensors, int root) {
  if (group.size() == 1) return;
  int64_t total = 0;
  for (const Tensor& t : tensors) total += nbytes(t);
  std::vector<char> buf(static_cast<size_t>(total));
  const bool sender = group.rank() == root;
  if (sender) {
    int64_t at = 0;
    for (const Tensor& t : tensors) {
      const Tensor c = t.contiguous();
      std::memcpy(buf.data() + at, bytes_of(c), static_cast<size_t>(nbytes(c)));
      at += nbytes(c);
    }
  }
  group.broadcast(buf.data(), total, root);
  if (sender) return;
  NoGradGuard no_grad;  // writing into parameters is allowed outside the graph
  int64_t at = 0;
  for (const Tensor& t : tensors) {
    Tensor received = Tensor::empty(t.shape(), t.dtype());
    std::memcpy(bytes_of(received), buf.data() + at, static_cast<size_t>(nbytes(received)));
    at += nbytes(received);
    Tensor target = t;
    target.copy_(received);  // through copy_, so the storage's version is bumped as for any write
  }
}

void sync_generator(ProcessGroup& group, Generator& gen) {
  if (group.size() == 1) return;
  std::vector<uint64_t> s = gen.state();
  group.broadcast(s.data(), static_cast<int64_t>(s.size() * sizeof(uint64_t)), 0);
  if (group.rank() == 0) return;
  uint64_t h = splitmix64(static_cast<uint64_t>(group.rank()));
  for (uint64_t w : s) h = splitmix64(h ^ w);
  gen.manual_seed(h);
}

DistributedDataParallel::DistributedDataParallel(nn::Module& module, std::shared_ptr<ProcessGroup> group,
                                                 DataParallelOptions options)
    : module_(module), group_(std::move(group)) {
  MG_CHECK(group_, "DistributedDataParallel", "needs a process group (dist::init_process_group())");
  MG_CHECK(options.bucket_bytes > 0, "DistributedDataParallel", "bucket_bytes must be positive, got ",
           options.bucket_bytes);
  for (auto& [name, p] : module_.named_parameters()) {
    MG_CHECK(is_floating(p.dtype()), "DistributedDataParallel", "parameter ", name, " is ", p.info(),
             "; gradients are averaged in float32 or float64");
    names_.push_back(name);
    params_.push_back(p);
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const DType dt = params_[i].dtype();
    const int64_t n = params_[i].numel();
    const bool full =
        !buckets_.empty() && (buckets_.back().numel + n) * static_cast<int64_t>(itemsize(dt)) > options.bucket_bytes;
    if (buckets_.empty() || buckets_.back().dtype != dt || (full && buckets_.back().numel > 0))
      buckets_.push_back(Bucket{dt, {}, 0});
    buckets_.back().params.push_back(i);
    buckets_.back().numel += n;
  }
  if (!buckets_.empty()) buckets_.back().numel += static_cast<int64_t>(params_.size());  // the "used" flags

  check_same_model();
  std::vector<Tensor> state;
  for (auto& [name, t] : module_.state_dict()) state.push_back(t);
  broadcast_tensors(*group_, state, 0);  // every rank starts from rank 0's weights
}

void DistributedDataParallel::check_same_model() const {
  if (group_->size() == 1) return;
  // A fingerprint of the state_dict (names, dtypes, shapes, in order) against rank 0's: with another
  // model on some rank the buckets would not line up and the allreduces would mix unrelated numbers.
  uint64_t h = 0;
  int64_t numel = 0;
  const nn::NamedTensors state = module_.state_dict();
  for (const auto& [name, t] : state) {
    for (char ch : name) h = splitmix64(h ^ static_cast<unsigned char>(ch));
    h = splitmix64(h ^ static_cast<uint64_t>(t.dtype()));
    for (int64_t d : t.shape()) h = splitmix64(h ^ static_cast<uint64_t>(d));
    numel += t.numel();
  }
  int64_t mine[3] = {static_cast<int64_t>(state.size()), numel, static_cast<int64_t>(h >> 1)};
  int64_t rank0[3] = {mine[0], mine[1], mine[2]};
  group_->broadcast(rank0, sizeof rank0, 0);
  std::vector<double> differs(static_cast<size_t>(group_->size()), 0.0);
  differs[static_cast<size_t>(group_->rank())] = std::equal(mine, mine + 3, rank0) ? 0.0 : 1.0;
  group_->allreduce_sum(differs.data(), static_cast<int64_t>(differs.size()));
  std::string which;
  for (size_t r = 0; r < differs.size(); ++r)
    if (differs[r] > 0) which += (which.empty() ? "" : ", ") + std::to_string(r);
  MG_CHECK(which.empty(), "DistributedDataParallel", "the model of rank(s) ", which,
           " differs from rank 0's (rank 0: ", rank0[0], " state_dict entries, ", rank0[1],
           " values); every rank must build the same model: run the same program with the same model flags");
}

void DistributedDataParallel::sync_buffers() {
  std::vector<Tensor> buffers;
  for (auto& [name, t] : module_.named_buffers()) buffers.push_back(t);
  broadcast_tensors(*group_, buffers, 0);
}

void DistributedDataParallel::average_gradients() {
  const int world = group_->size();
  if (world == 1 || buckets_.empty()) return;
  const size_t np = params_.size();
  // 1. Flatten and sum every bucket (all of them before any copy back: the last one carries the
  //    flags that say which parameters some rank reached).
  std::vector<std::vector<char>> flat(buckets_.size());
  for (size_t b = 0; b < buckets_.size(); ++b) {
    const Bucket& bucket = buckets_[b];
    const bool last = b + 1 == buckets_.size();
    MG_DISPATCH_FLOAT(bucket.dtype, "DistributedDataParallel", [&] {
      using T = scalar_t;
      flat[b].assign(static_cast<size_t>(bucket.numel) * sizeof(T), 0);
      T* buf = reinterpret_cast<T*>(flat[b].data());
      int64_t at = 0;
      for (size_t i : bucket.params) {
        const Tensor g = params_[i].grad();
        const int64_t n = params_[i].numel();
        if (g.defined()) {
          MG_CHECK(g.shape() == params_[i].shape() && g.dtype() == bucket.dtype, "DistributedDataParallel",
                   "the gradient of ", names_[i], " is ", g.info(), " for a parameter ", params_[i].info());
          std::memcpy(buf + at, g.contiguous().data<T>(), static_cast<size_t>(n) * sizeof(T));
        }
        at += n;
      }
      if (last)
        for (size_t i = 0; i < np; ++i) buf[at + static_cast<int64_t>(i)] = params_[i].grad().defined() ? T(1) : T(0);
      const auto t0 = std::chrono::steady_clock::now();
      group_->allreduce_sum(buf, bucket.numel);
      allreduce_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    });
  }
  // 2. Divide by the number of ranks and copy back.
  std::vector<bool> used(np);
  MG_DISPATCH_FLOAT(buckets_.back().dtype, "DistributedDataParallel", [&] {
    const auto* buf = reinterpret_cast<const scalar_t*>(flat.back().data());
    for (size_t i = 0; i < np; ++i) used[i] = buf[buckets_.back().numel - static_cast<int64_t>(np - i)] > 0;
  });
  for (size_t b = 0; b < buckets_.size(); ++b) {
    MG_DISPATCH_FLOAT(buckets_[b].dtype, "DistributedDataParallel", [&] {
      using T = scalar_t;
      T* buf = reinterpret_cast<T*>(flat[b].data());
      const T k_world = static_cast<T>(world);
      int64_t at = 0;
      for (size_t i : buckets_[b].params) {
        const int64_t n = params_[i].numel();
        if (used[i]) {
          Tensor g = params_[i].grad();
          if (!g.defined() || !g.is_contiguous()) {
            g = Tensor::empty(params_[i].shape(), buckets_[b].dtype);
            params_[i].set_grad(g);
          }
          T* out = g.data<T>();
          for (int64_t k = 0; k < n; ++k) out[k] = buf[at + k] / k_world;
        }
        at += n;
      }
    });
  }
}

}  // namespace mg::dist
