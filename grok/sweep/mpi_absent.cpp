// The MPI job of a sweep in a build without MPI: always a job of one, and a clear error when
// mpirun starts several (each would run the whole grid into the same directory).
#include "grok/sweep/mpi.h"

#include "core/error.h"

namespace tg::grok::sweep {

MpiJob::MpiJob() {
  check(mpirun_size() <= 1, "sweep: started by mpirun with ", mpirun_size(), " processes, but "
        "this tinygrok was built without MPI, so each would run the whole grid. Rebuild with MPI "
        "(apt-get install libopenmpi-dev, then cmake -DTINYGROK_MPI=ON), or run the sweep without "
        "mpirun (--workers N runs N at once on this machine)");
}

MpiJob::~MpiJob() = default;

bool MpiJob::built_in() { return false; }

std::vector<int> MpiJob::all_gather(int value) const { return {value}; }

std::vector<std::string> MpiJob::gather_to_root(const std::string& text) const { return {text}; }

}  // namespace tg::grok::sweep
