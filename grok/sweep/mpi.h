// The MPI job a sweep runs in. Started by mpirun, `tinygrok sweep` joins the job its ranks form:
// grid point i goes to rank i % size, each rank runs its points with its own workers, and rank 0
// gathers every rank's results (as JSON text, over MPI: the ranks need not share a file system)
// and writes results.csv and the phase diagrams. Started any other way it is a job of one.
//
// Two implementations, one per build (CMakeLists.txt picks): grok/sweep/mpi.cpp with MPI, and
// grok/sweep/mpi_absent.cpp, the job of one, without. Neither is in the library: only the
// tinygrok executable links MPI.
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

namespace tg::grok::sweep {

// How many processes mpirun started, from the environment it gives each of them (Open MPI's
// OMPI_COMM_WORLD_SIZE, or PMI_SIZE of MPICH's Hydra and others), or 0 when not started by one.
inline int mpirun_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* value = std::getenv(name)) return std::atoi(value);
  return 0;
}

class MpiJob {
 public:
  // Joins the MPI job (MPI_Init) when started by mpirun. A build without MPI started by mpirun
  // with more than one process throws tg::Error: each would run the whole grid.
  MpiJob();
  ~MpiJob();  // MPI_Finalize
  MpiJob(const MpiJob&) = delete;
  MpiJob& operator=(const MpiJob&) = delete;

  static bool built_in();  // whether this build has MPI

  int rank() const { return rank_; }
  int size() const { return size_; }
  int ranks_on_this_node() const { return ranks_on_this_node_; }  // they share its cores

  // Collective: every rank's `value`, in rank order, on every rank.
  std::vector<int> all_gather(int value) const;
  // Collective: on rank 0 every rank's `text` in rank order; empty on the others.
  std::vector<std::string> gather_to_root(const std::string& text) const;

 private:
  bool joined_ = false;
  int rank_ = 0, size_ = 1, ranks_on_this_node_ = 1;
};

}  // namespace tg::grok::sweep
