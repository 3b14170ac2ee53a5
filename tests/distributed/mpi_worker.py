"""One rank of the 2-rank tests: ``mpiexec -n 2 python mpi_worker.py OUT`` (run by test_distributed_mpi.py).

Every rank runs every scenario and writes what it saw to ``OUT/rank{r}.npz`` (arrays) and
``OUT/rank{r}.json`` (messages); the tests compare them with one process doing the same.
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import scenarios  # noqa: E402

import convstack as cs  # noqa: E402
import convstack.distributed as dist  # noqa: E402
import convstack.nn.functional as F  # noqa: E402
from convstack import data, nn  # noqa: E402
from convstack.nn.parallel import DistributedDataParallel  # noqa: E402
from convstack.train import Trainer  # noqa: E402

out = Path(sys.argv[1])
dist.init_process_group("mpi", timeout=60)
rank, world = dist.get_rank(), dist.get_world_size()
arrays, notes = {}, {"rank": rank, "world": world, "local_size": dist.default_group().local_size}

# Collectives.
t = cs.tensor([rank + 1.0, 10.0 * (rank + 1)])
dist.all_reduce(t)
arrays["sum"] = t.numpy()
t = cs.tensor([rank + 1.0])
dist.all_reduce(t, dist.ReduceOp.AVG)
arrays["avg"] = t.numpy()
t = cs.tensor([rank + 1, -rank], dtype=np.int64)
dist.all_reduce(t, op=dist.ReduceOp.MAX)
arrays["max"] = t.numpy()
gathered = [cs.zeros(3) for _ in range(world)]
dist.all_gather(gathered, cs.tensor([rank, rank + 0.5, -rank]))
arrays["gathered"] = np.stack([g.numpy() for g in gathered])
t = cs.tensor([float(rank)] * 4)
work = dist.broadcast(t, src=world - 1, async_op=True)
work.wait()
arrays["broadcast"] = t.numpy()
dist.barrier()

# A plain convnet: each rank half of the global batch, different initial weights (rank 0's win).
images, labels = scenarios.global_batch()
part = scenarios.shard(rank, world)
model = scenarios.plain_net()
if rank:
    for param in model.parameters():
        param.data[...] = np.random.default_rng(rank).standard_normal(param.shape)
model = DistributedDataParallel(model, bucket_cap_mb=0.001)  # several buckets, started during backward
notes["buckets"] = len(model.reducer.buckets)
scenarios.train(model, images[part], labels[part])
for name, value in scenarios.state_arrays(model.module).items():
    arrays["plain/" + name] = value

# The same with SyncBatchNorm.
model = DistributedDataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(scenarios.batch_norm_net()))
scenarios.train(model, images[part], labels[part])
for name, value in scenarios.state_arrays(model.module).items():
    arrays["sync_bn/" + name] = value

# no_sync: two half batches accumulated locally, averaged by the third backward.
model = DistributedDataParallel(scenarios.plain_net())
quarter = scenarios.GLOBAL_BATCH // (2 * world)
first = slice(part.start, part.start + quarter)
second = slice(part.start + quarter, part.stop)
with model.no_sync():
    F.cross_entropy(model(cs.tensor(images[first])), cs.tensor(labels[first])).backward()
arrays["no_sync/local"] = np.array(model.module[0].weight.grad.data, copy=True)
F.cross_entropy(model(cs.tensor(images[second])), cs.tensor(labels[second])).backward()
arrays["no_sync/synced"] = np.array(model.module[0].weight.grad.data, copy=True)


# A parameter only rank 0 uses, and one no rank uses.
class Branches(nn.Module):
    def __init__(self):
        super().__init__()
        cs.manual_seed(0)
        self.shared, self.rank0_only, self.unused = nn.Linear(4, 2), nn.Linear(4, 2), nn.Linear(4, 2)

    def forward(self, x):
        y = self.shared(x)
        return y + self.rank0_only(x) if rank == 0 else y


model = DistributedDataParallel(Branches())
model(cs.tensor(np.ones((3, 4), np.float32) * (rank + 1))).sum().backward()
arrays["branches/shared"] = np.array(model.module.shared.weight.grad.data, copy=True)
arrays["branches/rank0_only"] = np.array(model.module.rank0_only.weight.grad.data, copy=True)
notes["unused_grad_is_none"] = model.module.unused.weight.grad is None

# Different models on the ranks: every rank refuses.
try:
    DistributedDataParallel(nn.Linear(3, 2 + rank))
except ValueError as error:
    notes["mismatch"] = str(error)

# Sharded evaluation by the Trainer: 37 samples, shards of 18 and 19.
model = scenarios.plain_net()
evaluation = data.TensorDataset(np.random.default_rng(5).standard_normal((37, 1, 8, 8)).astype(np.float32),
                                np.arange(37) % 10)
trainer = Trainer(DistributedDataParallel(model), None, progress=False)
results = trainer.evaluate(data.DataLoader(evaluation, batch_size=8), num_classes=10)
arrays["eval/predictions"], arrays["eval/confusion"] = results["predictions"], results["confusion"]
arrays["eval/figures"] = np.array([results["loss"], results["acc"], results["top5"]])

np.savez(out / f"rank{rank}.npz", **arrays)
(out / f"rank{rank}.json").write_text(json.dumps(notes))
dist.destroy_process_group()
