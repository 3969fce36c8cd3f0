/* pair_style ffpt exchange layer: per-layer exchange of ghost-atom node features.
 *
 * Each rank evaluates only its own atoms; its graph holds the edges (i owned, j within the
 * cutoff) and, as nodes, its owned atoms plus the ghost atoms that are neighbours (one cutoff
 * + skin of ghosts: the normal comm cutoff, no wide shell). A model with latent displacements
 * reaches two edges per interaction (layer_hops = 2: d_j enters after a_j, f_j took their own
 * messages); then the ghosts next to the owned atoms get their edges too (shell 2 r_c + skin). The artifact exports the model in
 * pieces (ffpt/deploy/layered.py): edge_features(edge_vec), embed(species), interaction(k, x,
 * ...), readout(x, species), node features x = [a | f | d] with node_channels numbers per atom.
 *
 * Artifacts with the paired pieces (edge_pairs, edge_features_paired, interaction_paired) run
 * those: one message and one set of edge MLPs per edge whose reverse is in the graph, as the
 * one-call model (edges to ghosts stay single); older artifacts run the plain pieces. With
 * interaction_owned a layer returns the owned rows only (its node update skips the ghost rows,
 * which the exchange replaces). The pieces run with the graph executor's optimisation off (no
 * symbolic autodiff of the pieces).
 *
 * Cross-rank pairs once (cross_pairs yes, off by default; artifacts with messages + update,
 * one-hop layers, fold): an edge between owned atom i and a remote atom j is computed only by the
 * rank whose atom has the smaller tag, in both directions (pair_cross_rank_edges adds j -> i),
 * so every edge has its reverse and the pair's message and edge MLPs run once, as on one rank
 * (otherwise both ranks compute such an edge, unpaired). A layer is then messages (sums per
 * row; a ghost row holds this rank's share of a remote atom's sum), a reverse exchange that adds
 * the ghost rows to their owners, and update on the owned rows. Backward: the gradient of the
 * summed messages goes to the ghost rows by forward exchange, then through messages. Measured
 * on 2 ranks: 5 % less model time, as much more exchange waiting (twice the exchanges).
 *
 * Forward: before interaction k > 0 the owned rows of x go to LAMMPS forward communication
 * (pack/unpack_forward_comm), which fills every ghost atom with its owner's features (periodic
 * images included; features are invariants and Cartesian vectors, unchanged by a lattice
 * translation). Each piece keeps its autograd graph; its input is a detached leaf.
 * Backward, piece by piece in reverse order: dE/d(input of layer k) on ghost rows goes back to
 * the owners by reverse communication (pack/unpack_reverse_comm) and is added to the owned
 * rows, whose sum is then dE_total/d(output of layer k-1) for every owned atom (the energy of
 * every rank included); ghost rows of that output are zero (ghost inputs came from the
 * exchange, not from this rank's layer). Per-edge inputs (rbf, env, sh) are leaves whose
 * gradients add up over the layers and go through edge_features once: g_e = dE/d(edge_vec_e).
 * Forces: F_i += g_e, F_j -= g_e on the LAMMPS atoms of edge e (ghost forces reach their owners
 * through LAMMPS' reverse communication, newton on); virial W = -sum_e edge_vec_e (x) g_e.
 *
 * fold yes: a ghost that is an image of an owned atom (same ID) is that atom's node, and
 * duplicate ghosts of one remote atom share one node (its first image, which alone sends the
 * gradient back). fold no: every ghost neighbour is its own node (tests the exchange on one
 * rank). Ghost atoms outside the graph still relay rows in multi-hop swaps, so the exchange
 * buffer (comm_rows) is per LAMMPS atom, not per node (as SevenNet's x_comm_hold). A float32
 * model exchanges float32 rows, two numbers per double of the comm buffer (half the bytes).
 * With the brick comm only the rows that some rank reads travel (setup_exchange_masks).
 */
#include "pair_ffpt.h"
#include "ffpt_lammps_compat.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace LAMMPS_NS;

/* The per-layer graph: breadth_first_graph with layer_hops hops (see pair_ffpt.cpp). Only
   the owned atoms get edges for 1 hop; with 2 (latent displacements) also the ghosts next to
   them, whose neighbour lists are complete because the ghost shell is 2 r_c + skin. */
int PairFFPT::build_layer_graph()
{
  const int nnodes = breadth_first_graph(layer_hops);
  if (cross_pairs) pair_cross_rank_edges();
  return nnodes;
}

/* Cross-rank pairs once (newton on for messages): an edge from owned atom i to ghost node j
   stays on this rank if tag i < tag j, together with its reverse j -> i (so the pair's message
   and edge MLPs run once and j's share goes to its owner by reverse communication); else the
   rank that owns j computes the pair and this edge is dropped. Each cross-rank pair is then
   computed by exactly one rank (the two ranks see the same pair: full lists, tags differ since
   with fold a ghost with an owned atom's tag is that atom's node). */
void PairFFPT::pair_cross_rank_edges()
{
  const tagint *tag = atom->tag;
  const int nlocal = atom->nlocal;
  const size_t ne = edge_i.size();
  size_t kept = 0;
  std::vector<size_t> back;    // kept edges to ghost nodes, in order
  for (size_t e = 0; e < ne; e++) {
    const bool ghost = edge_j[e] >= nlocal;
    if (ghost && tag[edge_i[e]] > tag[edge_atom[e]]) continue;    // the other rank's pair
    if (ghost) back.push_back(kept);
    edge_i[kept] = edge_i[e];
    edge_j[kept] = edge_j[e];
    edge_atom[kept] = edge_atom[e];
    for (int d = 0; d < 3; d++) edge_vec[3 * kept + d] = edge_vec[3 * e + d];
    kept++;
  }
  const size_t total = kept + back.size();
  edge_i.resize(total);
  edge_j.resize(total);
  edge_atom.resize(total);
  edge_vec.resize(3 * total);
  for (size_t r = 0; r < back.size(); r++) {
    const size_t e = back[r], k = kept + r;
    edge_i[k] = edge_j[e];
    edge_j[k] = edge_i[e];
    edge_atom[k] = (int) edge_i[e];    // owned node i is LAMMPS atom i
    for (int d = 0; d < 3; d++) edge_vec[3 * k + d] = -edge_vec[3 * e + d];
  }
}

/* Exchange rows: a float32 model exchanges float32 numbers, two per double of the LAMMPS comm
   buffer (a row of C numbers is ceil(C / 2) doubles; comm_forward/comm_reverse = C only bound
   the buffer); a float64 model exchanges its own doubles, exactly. */
static size_t element_bytes(torch::ScalarType dtype)
{
  return dtype == torch::kFloat32 ? sizeof(float) : sizeof(double);
}

static size_t row_doubles(int channels, torch::ScalarType dtype)
{
  return ((size_t) channels * element_bytes(dtype) + sizeof(double) - 1) / sizeof(double);
}

/* dst[c] += src[c] for c < n (rows of the model dtype in comm_rows / an exchanged tensor) */
static void add_row(void *dst, const void *src, size_t n, torch::ScalarType dtype)
{
  if (dtype == torch::kFloat32) {
    float *d = static_cast<float *>(dst);
    const float *s = static_cast<const float *>(src);
    for (size_t c = 0; c < n; c++) d[c] += s[c];
  } else {
    double *d = static_cast<double *>(dst);
    const double *s = static_cast<const double *>(src);
    for (size_t c = 0; c < n; c++) d[c] += s[c];
  }
}

/* The rows the exchange must move (brick comm; tiled comm moves all rows), set when the
   neighbour lists are rebuilt: a rank reads the rows of its ghost nodes, which are neighbour-list
   entries of its owned atoms (and of those ghosts with layer_hops = 2) until the next rebuild;
   with fold, images of owned atoms are not ghost nodes. A reverse comm of these flags also marks
   the ghosts that relay such rows in later swaps (multi-hop swaps, periodic images) and
   records, per swap, which atoms of the send list and which received ghosts carry a row.
   LAMMPS otherwise moves every ghost (~7x the ghost nodes of a 2-rank 1,536-atom water box:
   y/z images, the skin) in every layer exchange. */
void PairFFPT::setup_exchange_masks(int /*nnodes*/)
{
  if (masks_ready && neighbor->ago != 0) return;    // rebuilds happen on all ranks at once
  masks_ready = true;
  comm_masked = comm->style == 0;
  if (!comm_masked) return;
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const tagint *tag = atom->tag;
  std::vector<char> owned_tag;
  if (fold) {
    tagint maxtag = 0;
    for (int i = 0; i < nall; i++) maxtag = std::max(maxtag, tag[i]);
    owned_tag.assign(maxtag + 1, 0);
    for (int i = 0; i < nlocal; i++) owned_tag[tag[i]] = 1;
  }
  comm_need.assign(nall, 0.0);
  std::vector<int> frontier(nlocal), next;
  for (int i = 0; i < nlocal; i++) frontier[i] = i;
  for (int hop = 0; hop < layer_hops; hop++) {
    next.clear();
    for (int a : frontier)
      for (int jj = 0; jj < list->numneigh[a]; jj++) {
        const int j = list->firstneigh[a][jj] & NEIGHMASK;
        if (j < nlocal || comm_need[j] > 0.0 || (fold && owned_tag[tag[j]])) continue;
        comm_need[j] = 1.0;
        next.push_back(j);
      }
    frontier.swap(next);
  }
  comm_mode = COMM_FLAGS;
  comm_call = 0;
  ffpt_compat::reverse_comm(comm, this, 1);
  comm_swaps = comm_call;
  comm_mode = COMM_ALL;
}

/* The mask of call c (reverse order of the swaps) for a pack/unpack of n atoms. */
const std::vector<char> &PairFFPT::exchange_mask(std::vector<std::vector<char>> &masks, int c,
                                                 int n)
{
  if (c < 0 || c >= comm_swaps || (int) masks[c].size() != n)
    error->one(FLERR, "pair_style ffpt: the layer exchange saw a different swap pattern than "
                      "its set-up (swap {} of {}); please report this", c, comm_swaps);
  return masks[c];
}

/* x [rows >= nlocal, C] of this rank's layer output (owned rows first) -> [nnodes, C]: the
   owned rows of x, ghost rows set to their owners' rows (forward communication). Every rank
   calls it, also ranks without atoms. */
torch::Tensor PairFFPT::exchange_forward(const torch::Tensor &x, int nnodes)
{
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const size_t W = row_doubles(node_channels, dtype);
  const size_t bytes = (size_t) node_channels * element_bytes(dtype);    // one node's row
  if (comm_rows.size() < (size_t) nall * W) comm_rows.resize((size_t) nall * W);
  char *rows = reinterpret_cast<char *>(comm_rows.data());
  torch::Tensor xd;
  if (nnodes > 0) {
    xd = x.detach().to(torch::kCPU, dtype).contiguous();
    const char *xp = static_cast<const char *>(xd.data_ptr());
    if (bytes == W * sizeof(double))
      std::memcpy(rows, xp, bytes * nlocal);
    else
      for (int k = 0; k < nlocal; k++)
        std::memcpy(rows + W * sizeof(double) * k, xp + bytes * k, bytes);
  }
  comm_mode = comm_masked ? COMM_MASKED : COMM_ALL;
  comm_call = 0;
  ffpt_compat::forward_comm(comm, this);
  comm_mode = COMM_ALL;
  if (nnodes == 0) return x;
  torch::Tensor xc = torch::empty({nnodes, (int64_t) node_channels}, xd.options());
  char *xp = static_cast<char *>(xc.data_ptr());
  std::memcpy(xp, xd.data_ptr(), bytes * nlocal);
  for (int k = nlocal; k < nnodes; k++)
    std::memcpy(xp + bytes * k, rows + W * sizeof(double) * node_atom[k], bytes);
  return xc.to(device);
}

/* g = dE/d(layer input) [nnodes, C] on this rank -> dE_total/d(previous layer output) [nout, C]
   (nout >= nlocal rows of that output): ghost rows go to their owners (reverse communication)
   and are added there; rows nlocal..nout-1 (ghost rows of a full-size output) are 0. */
torch::Tensor PairFFPT::exchange_reverse(const torch::Tensor &g, int nnodes, int nout)
{
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const size_t C = (size_t) node_channels;
  const size_t W = row_doubles(node_channels, dtype);
  const size_t bytes = C * element_bytes(dtype);
  if (comm_rows.size() < (size_t) nall * W) comm_rows.resize((size_t) nall * W);
  if (comm_masked) {    // rows that receive or relay: owned atoms and flagged ghosts
    std::fill(comm_rows.begin(), comm_rows.begin() + (size_t) nlocal * W, 0.0);
    for (int a = nlocal; a < nall; a++)
      if (comm_need[a] > 0.0) std::fill_n(comm_rows.begin() + (size_t) a * W, W, 0.0);
  } else {
    std::fill(comm_rows.begin(), comm_rows.begin() + (size_t) nall * W, 0.0);
  }
  char *rows = reinterpret_cast<char *>(comm_rows.data());
  torch::Tensor gd;
  if (nnodes > 0) {
    gd = g.detach().to(torch::kCPU, dtype).contiguous();
    const char *gp = static_cast<const char *>(gd.data_ptr());
    for (int k = nlocal; k < nnodes; k++)    // one representative atom per ghost node
      std::memcpy(rows + W * sizeof(double) * node_atom[k], gp + bytes * k, bytes);
  }
  comm_mode = comm_masked ? COMM_MASKED : COMM_ALL;
  comm_call = 0;
  ffpt_compat::reverse_comm(comm, this);
  comm_mode = COMM_ALL;
  if (nnodes == 0) return g;
  torch::Tensor gc = torch::zeros({nout, (int64_t) C}, gd.options());
  char *gp = static_cast<char *>(gc.data_ptr());
  std::memcpy(gp, gd.data_ptr(), bytes * nlocal);
  for (int k = 0; k < nlocal; k++)
    add_row(gp + bytes * k, rows + W * sizeof(double) * k, C, dtype);
  return gc.to(device);
}

/* Forward comm calls come in swap order, reverse comm calls (and the masks) in reverse order. */
int PairFFPT::pack_forward_comm(int n, int *list, double *buf, int /*pbc_flag*/, int * /*pbc*/)
{
  const size_t W = row_doubles(node_channels, dtype);
  if (comm_mode == COMM_MASKED) {
    const auto &mask = exchange_mask(send_mask, comm_swaps - 1 - comm_call, n);
    size_t m = 0;
    for (int i = 0; i < n; i++)
      if (mask[i]) std::memcpy(buf + W * m++, comm_rows.data() + W * list[i], sizeof(double) * W);
    return (int) (W * m);
  }
  for (int i = 0; i < n; i++) std::memcpy(buf + W * i, comm_rows.data() + W * list[i], sizeof(double) * W);
  return (int) (W * n);
}

void PairFFPT::unpack_forward_comm(int n, int first, double *buf)
{
  const size_t W = row_doubles(node_channels, dtype);
  if (comm_mode == COMM_MASKED) {
    const auto &mask = exchange_mask(recv_mask, comm_swaps - 1 - comm_call, n);
    size_t m = 0;
    for (int i = 0; i < n; i++)
      if (mask[i])
        std::memcpy(comm_rows.data() + W * (first + i), buf + W * m++, sizeof(double) * W);
    comm_call++;
    return;
  }
  std::memcpy(comm_rows.data() + W * first, buf, sizeof(double) * W * n);
}

int PairFFPT::pack_reverse_comm(int n, int first, double *buf)
{
  if (comm_mode == COMM_FLAGS) {    // set-up: which received ghosts are read downstream
    if ((int) recv_mask.size() <= comm_call) recv_mask.resize(comm_call + 1);
    recv_mask[comm_call].resize(n);
    for (int i = 0; i < n; i++) {
      buf[i] = comm_need[first + i];
      recv_mask[comm_call][i] = buf[i] > 0.0;
    }
    return n;
  }
  const size_t W = row_doubles(node_channels, dtype);
  if (comm_mode == COMM_MASKED) {
    const auto &mask = exchange_mask(recv_mask, comm_call, n);
    size_t m = 0;
    for (int i = 0; i < n; i++)
      if (mask[i])
        std::memcpy(buf + W * m++, comm_rows.data() + W * (first + i), sizeof(double) * W);
    return (int) (W * m);
  }
  std::memcpy(buf, comm_rows.data() + W * first, sizeof(double) * W * n);
  return (int) (W * n);
}

void PairFFPT::unpack_reverse_comm(int n, int *list, double *buf)
{
  if (comm_mode == COMM_FLAGS) {    // the sender's side of the same swap; relays get flagged
    if ((int) send_mask.size() <= comm_call) send_mask.resize(comm_call + 1);
    send_mask[comm_call].resize(n);
    for (int i = 0; i < n; i++) {
      send_mask[comm_call][i] = buf[i] > 0.0;
      comm_need[list[i]] += buf[i];
    }
    comm_call++;
    return;
  }
  const size_t W = row_doubles(node_channels, dtype);
  if (comm_mode == COMM_MASKED) {
    const auto &mask = exchange_mask(send_mask, comm_call, n);
    size_t m = 0;
    for (int i = 0; i < n; i++)
      if (mask[i])
        add_row(comm_rows.data() + W * list[i], buf + W * m++, (size_t) node_channels, dtype);
    comm_call++;
    return;
  }
  for (int i = 0; i < n; i++)
    add_row(comm_rows.data() + W * list[i], buf + W * i, (size_t) node_channels, dtype);
}

void PairFFPT::compute_layers()
{
  torch::AutoGradMode grad_mode(true);
  // pieces take inputs that require grad: with optimisation on, the graph executor would
  // differentiate them symbolically (measured ~20 % slower than autograd's own backward)
  torch::jit::GraphOptimizerEnabledGuard no_symbolic_autodiff(false);
  const bool paired = model.find_method("edge_pairs").has_value();    // older artifacts: no
  // layer outputs of the owned rows only (artifacts with interaction_owned; else all nodes)
  const bool owned = paired && model.find_method("interaction_owned").has_value();
  const int nlocal = atom->nlocal;
  const int nnodes = build_layer_graph();
  const int L = num_interactions;
  const bool work = nnodes > 0;    // ranks without atoms still take part in every exchange
  graph_nodes += nnodes;
  graph_edges += (double) edge_i.size();
  lap(T_GRAPH);
  {
    const double c0 = process_cpu_seconds();
    setup_exchange_masks(nnodes);
    cpu_exchange += process_cpu_seconds() - c0;
    lap(T_EXCHANGE);
  }

  const int64_t nedges = (int64_t) edge_i.size();
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  torch::Tensor ev, spec, eidx, x, atomic, canon, expand;
  int64_t npaired = 0;
  std::vector<torch::Tensor> per_edge, leaves, xin(L), xout(L), msum(L), sleaf(L);
  if (work) {
    ev = torch::from_blob(edge_vec.data(), {nedges, 3}, f64).to(device, dtype, false, true);
    ev.requires_grad_(true);
    spec = torch::from_blob(species.data(), {nnodes}, i64).to(device, false, true);
    eidx = torch::stack({torch::from_blob(edge_i.data(), {nedges}, i64),
                         torch::from_blob(edge_j.data(), {nedges}, i64)})
               .to(device);
  }
  lap(T_TO_MODEL);
  try {
    if (work) {
      c10::intrusive_ptr<c10::ivalue::Tuple> ef;
      if (paired) {    // one message and one set of edge MLPs per edge pair (layered.py)
        auto pr = model.get_method("edge_pairs")({eidx, ev, (int64_t) nnodes}).toTuple();
        canon = pr->elements()[0].toTensor();
        expand = pr->elements()[1].toTensor();
        npaired = pr->elements()[2].toInt();
        ef = model.get_method("edge_features_paired")({ev, canon}).toTuple();
      } else {
        ef = model.get_method("edge_features")({ev}).toTuple();
      }
      for (const auto &v : ef->elements()) {
        per_edge.push_back(v.toTensor());
        leaves.push_back(v.toTensor().detach().requires_grad_(true));
      }
      x = model.get_method("embed")({spec}).toTensor();
    }
    auto interaction = model.get_method(cross_pairs ? "messages"
                                        : owned     ? "interaction_owned"
                                        : paired    ? "interaction_paired"
                                                    : "interaction");
    for (int k = 0; k < L; k++) {
      if (k > 0) {
        lap(T_FORWARD);
        const double c0 = process_cpu_seconds();
        x = exchange_forward(x, nnodes);
        cpu_exchange += process_cpu_seconds() - c0;
        lap(T_EXCHANGE);
      }
      if (work) {
        xin[k] = x.detach().requires_grad_(k > 0);
        std::vector<torch::jit::IValue> args{(int64_t) k, xin[k], leaves[0], leaves[1], leaves[2], eidx};
        if (paired) args.insert(args.end(), {canon, expand, npaired});
        if (owned && !cross_pairs) args.emplace_back((int64_t) nlocal);
        xout[k] = x = interaction(args).toTensor();
      }
      if (!cross_pairs) continue;
      // the message sums: ghost rows (this rank's share of a remote atom's pairs) to the owners
      msum[k] = x;
      lap(T_FORWARD);
      const double c0 = process_cpu_seconds();
      torch::Tensor s = exchange_reverse(x, nnodes, work ? nlocal : 0);
      cpu_exchange += process_cpu_seconds() - c0;
      lap(T_EXCHANGE);
      if (!work) continue;
      sleaf[k] = s.detach().requires_grad_(true);
      xout[k] = x = model.get_method("update")({(int64_t) k, xin[k].narrow(0, 0, nlocal), sleaf[k]})
                        .toTensor();
    }
    if (work)
      atomic = model.get_method("readout")({x.narrow(0, 0, nlocal), spec.narrow(0, 0, nlocal)})
                   .toTensor();
  } catch (const std::exception &e) {
    std::string msg = e.what();
    error->one(FLERR, "pair_style ffpt: the model failed: {}", msg.substr(0, 400));
  }
  lap(T_FORWARD);

  // backward, piece by piece: layer k's output gradient is complete after the reverse exchange
  std::vector<torch::Tensor> acc(3);
  torch::Tensor gout;
  for (int k = L - 1; k >= 0; k--) {
    torch::Tensor gin;
    torch::Tensor top = k == L - 1 ? atomic : xout[k];
    torch::Tensor gtop = work ? (k == L - 1 ? torch::ones_like(atomic) : gout) : torch::Tensor();
    if (cross_pairs) {    // through update to the summed messages, whose owners' gradients the
      torch::Tensor gs;   // ghost rows then get (forward communication), then through messages
      if (work) {
        std::vector<torch::Tensor> wrt;
        if (k > 0) wrt.push_back(xin[k]);
        wrt.push_back(sleaf[k]);
        auto g1 = torch::autograd::grad({top}, wrt, {gtop}, false, false, true);
        if (k > 0) gin = g1[0];
        gs = g1.back().defined() ? g1.back() : torch::zeros_like(sleaf[k]);
        xout[k] = torch::Tensor();
        sleaf[k] = torch::Tensor();
      }
      lap(T_BACKWARD);
      const double c0 = process_cpu_seconds();
      gs = exchange_forward(gs, nnodes);
      cpu_exchange += process_cpu_seconds() - c0;
      lap(T_EXCHANGE);
      top = msum[k];
      gtop = gs;
      msum[k] = torch::Tensor();
    }
    if (work) {
      std::vector<torch::Tensor> wrt;
      if (k > 0) wrt.push_back(xin[k]);
      wrt.insert(wrt.end(), leaves.begin(), leaves.end());
      auto grads = torch::autograd::grad({top}, wrt, {gtop}, false, false, true);
      xout[k] = torch::Tensor();
      for (int q = 0; q < 3; q++) {
        const auto &gq = grads[grads.size() - 3 + q];
        if (gq.defined()) acc[q] = acc[q].defined() ? acc[q] + gq : gq;
      }
      if (k > 0) {
        torch::Tensor g2 = grads[0].defined() ? grads[0] : torch::zeros_like(xin[k]);
        gin = gin.defined() ? gin + g2 : g2;
      }
    }
    if (k > 0) {
      lap(T_BACKWARD);
      const double c0 = process_cpu_seconds();
      gout = exchange_reverse(gin, nnodes, work ? (int) xout[k - 1].size(0) : 0);
      cpu_exchange += process_cpu_seconds() - c0;
      lap(T_EXCHANGE);
    }
  }
  if (!work) return;
  std::vector<torch::Tensor> outs, gouts;
  for (int q = 0; q < 3; q++)
    if (acc[q].defined()) {
      outs.push_back(per_edge[q]);
      gouts.push_back(acc[q]);
    }
  torch::Tensor g = outs.empty() ? torch::zeros_like(ev)
                                 : torch::autograd::grad(outs, {ev}, gouts, false, false, true)[0];
  if (!g.defined()) g = torch::zeros_like(ev);
  lap(T_BACKWARD);

  tally_energy(atomic);
  torch::Tensor gd = g.to(torch::kCPU, torch::kFloat64).contiguous();
  add_forces_and_virial(gd.data_ptr<double>(), nnodes);
  lap(T_FROM_MODEL);
}

/* Per-edge g = dE/d(edge_vec) -> forces on the edges' LAMMPS atoms (checked for sanity before
   they are added) and the global virial. */
void PairFFPT::add_forces_and_virial(const double *g, int /*nnodes*/)
{
  const int nall = atom->nlocal + atom->nghost;
  const size_t nedges = edge_i.size();
  atom_force.assign(3 * (size_t) nall, 0.0);
  double w[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t e = 0; e < nedges; e++) {
    const double *ge = g + 3 * e;
    const double *re = edge_vec.data() + 3 * e;
    double *fi = atom_force.data() + 3 * (size_t) node_atom[edge_i[e]];
    double *fj = atom_force.data() + 3 * (size_t) edge_atom[e];
    for (int c = 0; c < 3; c++) {
      fi[c] += ge[c];
      fj[c] -= ge[c];
      for (int d = 0; d < 3; d++) w[3 * c + d] -= re[c] * ge[d];
    }
  }
  double **f = atom->f;
  for (int a = 0; a < nall; a++) {
    const double *fa = atom_force.data() + 3 * a;
    check_force(fa, a);
    f[a][0] += fa[0];
    f[a][1] += fa[1];
    f[a][2] += fa[2];
  }
  if (vflag_global) {
    virial[0] += w[0];
    virial[1] += w[4];
    virial[2] += w[8];
    virial[3] += 0.5 * (w[1] + w[3]);
    virial[4] += 0.5 * (w[2] + w[6]);
    virial[5] += 0.5 * (w[5] + w[7]);
  }
}
