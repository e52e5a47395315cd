// The MPI job of a sweep, on MPI (the C API): joining, the ranks on this node, and the two
// collectives the sweep needs.
#include "grok/sweep/mpi.h"

#include <mpi.h>

#include "core/error.h"

namespace tg::grok::sweep {

namespace {
void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw Error(cat("sweep: ", what, ": ", std::string(text, static_cast<size_t>(length))));
}
}  // namespace

MpiJob::MpiJob() {
  if (mpirun_size() == 0) return;  // not under mpirun: a job of one, without MPI_Init
  check_mpi(MPI_Init(nullptr, nullptr), "MPI_Init");
  joined_ = true;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);  // errors as tg::Error, not abort
  check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
  MPI_Comm node;
  check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
            "MPI_Comm_split_type");
  MPI_Comm_size(node, &ranks_on_this_node_);
  MPI_Comm_free(&node);
}

MpiJob::~MpiJob() {
  if (joined_) MPI_Finalize();
}

bool MpiJob::built_in() { return true; }

std::vector<int> MpiJob::all_gather(int value) const {
  std::vector<int> values(static_cast<size_t>(size_), value);
  if (joined_)
    check_mpi(MPI_Allgather(&value, 1, MPI_INT, values.data(), 1, MPI_INT, MPI_COMM_WORLD),
              "MPI_Allgather");
  return values;
}

std::vector<std::string> MpiJob::gather_to_root(const std::string& text) const {
  if (!joined_) return {text};
  const int length = static_cast<int>(text.size());
  std::vector<int> lengths(static_cast<size_t>(size_)), offsets(static_cast<size_t>(size_));
  check_mpi(MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, MPI_COMM_WORLD),
            "MPI_Gather");
  std::string all;
  if (rank_ == 0) {
    int total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[r] = total;
      total += lengths[r];
    }
    all.resize(static_cast<size_t>(total));
  }
  check_mpi(MPI_Gatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(),
                        MPI_CHAR, 0, MPI_COMM_WORLD),
            "MPI_Gatherv");
  if (rank_ != 0) return {};
  std::vector<std::string> texts;
  for (int r = 0; r < size_; ++r) texts.push_back(all.substr(offsets[r], lengths[r]));
  return texts;
}

}  // namespace tg::grok::sweep
