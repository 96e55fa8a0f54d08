// maxgrad in one include: #include <maxgrad/maxgrad.h>, link maxgrad::maxgrad (README.md).
//
//   core    Tensor, its creation (zeros, randn, ...), every op (core/ops.h), the autograd engine,
//           Generator, threads (set_num_threads) and the kernel path (fast or reference)
//   nn      Module and the layers, BatchNorm2d; optim (SGD, AdamW); serialize (state_dict files,
//           checkpoints over safetensors); dist (data-parallel training)
//   models  MaxViT, as torchvision builds it
//   data    CIFAR-10 and image-folder datasets, transforms, the prefetching DataLoader
#pragma once

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/error.h"
#include "maxgrad/core/factory.h"
#include "maxgrad/core/generator.h"
#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/ops.h"
#include "maxgrad/core/runtime/isa.h"
#include "maxgrad/core/runtime/parallel.h"
#include "maxgrad/core/tensor.h"
#include "maxgrad/data/cifar_binary.h"
#include "maxgrad/data/dataset.h"
#include "maxgrad/data/image_folder.h"
#include "maxgrad/data/loader.h"
#include "maxgrad/data/subset.h"
#include "maxgrad/data/synthetic.h"
#include "maxgrad/data/transforms.h"
#include "maxgrad/models/maxvit.h"
#include "maxgrad/nn/batchnorm.h"
#include "maxgrad/nn/dist/data_parallel.h"
#include "maxgrad/nn/dist/sync_batchnorm.h"
#include "maxgrad/nn/layers.h"
#include "maxgrad/nn/module.h"
#include "maxgrad/nn/optim/optim.h"
#include "maxgrad/nn/precise_bn.h"
#include "maxgrad/nn/serialize/checkpoint.h"
#include "maxgrad/nn/serialize/serialize.h"
