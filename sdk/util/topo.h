// topo.h - topological order of a graph of nodes 0..n-1 given as edges
// from[e] -> to[e] ("to runs after from"): Kahn's algorithm, taking the
// lowest-indexed ready node first, so nodes with no order between them
// keep their index order and a chain listed top to bottom stays so.
// Used by the server's workflow validation and the CLI's step ordering.
//
// Pure code: no I/O, no locks; any thread. Every from[e] and to[e] must be
// below n. Repeated edges are allowed; an edge from a node to itself is a
// cycle of one.
#ifndef AV_TOPO_H
#define AV_TOPO_H

#include <stddef.h>

// Fills order[0..*n_ordered) with the nodes whose parents all come before
// them; *n_ordered < n when cycles leave nodes (on or below one) unordered.
// depth (n entries, or NULL) gets each node's longest chain of parents
// above it (0 for roots and for unordered nodes). 0, or -1 if out of
// memory.
int av_topo_sort(size_t n, const size_t *from, const size_t *to, size_t ne,
    size_t *order, size_t *depth, size_t *n_ordered);

// After av_topo_sort() left nodes unordered: names one cycle among them.
// Starting at the lowest-indexed unordered node, it follows each node's
// first unordered parent (in edge order) until a node repeats. cycle (room
// for n + 1) gets that cycle parent to child, its first node repeated at
// the end ("a -> b -> a": b runs after a, a after b); *len counts entries.
// 0, or -1 if out of memory or nothing is unordered.
int av_topo_cycle(size_t n, const size_t *from, const size_t *to, size_t ne,
    const size_t *order, size_t n_ordered, size_t *cycle, size_t *len);

#endif
