// Data-parallel training in the convention of PyTorch's DistributedDataParallel (DDP): every rank
// holds the whole model, runs forward and backward on its own share of the global batch, and the
// gradients are averaged over the ranks, so every rank applies the same optimiser step.
//
//   dist::DistributedDataParallel ddp(model, group);   // rank 0's weights on every rank
//   for (each step) {
//     ddp.sync_buffers();                // rank 0's BatchNorm statistics on every rank
//     loss = criterion(model(my_share_of_x), my_share_of_y);
//     loss.backward();
//     ddp.average_gradients();           // grad = mean over ranks; allreduce per bucket
//     opt.step();                        // the same update everywhere
//   }
//
// Differences from PyTorch's DDP, all of them in what happens when rather than in the numbers:
//   - The gradients are reduced after backward, not overlapped with it (DDP's autograd hooks):
//     the engine (core/autograd.cpp) stays the one-screen loop it is.
//   - The model is not wrapped: state_dict names stay torchvision's, without DDP's "module." prefix.
#pragma once
#include <memory>
#include <vector>

#include "maxgrad/core/generator.h"
#include "maxgrad/nn/dist/distributed.h"
#include "maxgrad/nn/module.h"

namespace mg::dist {

struct DataParallelOptions {
  // Gradients are copied into flat buffers of at most this many bytes, one allreduce per buffer:
  // a few large messages instead of one per tensor (DDP's bucket_cap_mb, 25 MB).
  int64_t bucket_bytes = int64_t{25} << 20;
};

class DistributedDataParallel {
 public:
  // Checks that every rank holds the same model (names, dtypes, shapes), broadcasts rank 0's
  // parameters and buffers to every rank, as DDP's constructor does, and lays out the buckets: parameters in
  // named_parameters() order, a new bucket when the dtype changes or the cap is reached. `module` must outlive this
  // object.
  DistributedDataParallel(nn::Module& module, std::shared_ptr<ProcessGroup> group, DataParallelOptions options = {});

  // Rank 0's buffers (BatchNorm running statistics, num_batches_tracked, ...) onto every rank.
  // DDP does this before every forward (broadcast_buffers=True), so the running statistics that
  // every rank evaluates with and rank 0 saves are rank 0's own, updated from rank 0's share of
  // each batch. (With SyncBatchNorm every rank computes the same global statistics anyway.)
  void sync_buffers();

  // After backward: every parameter's gradient becomes the sum over ranks divided by the number of
  // ranks. A rank whose backward did not reach a parameter contributes zeros; a parameter no rank
  // reached keeps no gradient (so the optimiser skips it, as DDP with find_unused_parameters).
  void average_gradients();

  ProcessGroup& group() const { return *group_; }
  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Seconds spent inside average_gradients' allreduces (the waiting for slower ranks included).
  double allreduce_seconds() const { return allreduce_seconds_; }

 private:
  void check_same_model() const;  // throws on every rank when some rank's model differs from rank 0's
  struct Bucket {
    DType dtype;
    std::vector<size_t> params;  // indices into params_
    int64_t numel = 0;           // gradient elements, plus one "used" flag per parameter in the last bucket
  };
  nn::Module& module_;
  std::shared_ptr<ProcessGroup> group_;
  std::vector<Tensor> params_;
  std::vector<std::string> names_;
  std::vector<Bucket> buckets_;
  double allreduce_seconds_ = 0;
};

// Copies root's values of `tensors` (any dtypes, same shapes on every rank) into every rank's, in
// one broadcast of their bytes packed end to end.
void broadcast_tensors(ProcessGroup& group, const std::vector<Tensor>& tensors, int root = 0);

// Random streams for a per-sample draw (stochastic depth): rank 0's generator state on every rank,
// and then, on every rank but 0, a stream of its own split from it (splitmix of the state and the
// rank). Without the split every rank would draw the same masks for its different images. Rank 0
// keeps the state it had, so a checkpoint of rank 0's generator resumes the run for any rank count.
void sync_generator(ProcessGroup& group, Generator& gen);

}  // namespace mg::dist
