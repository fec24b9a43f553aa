/*
 * list.h - intrusive doubly linked lists. A node is embedded in the object it links; an empty
 * list points at itself, so insertion and removal never branch on emptiness.
 */
#ifndef PETREL_BASE_LIST_H
#define PETREL_BASE_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list {
    struct list *prev;
    struct list *next;
};

#define LIST_INIT(name) {&(name), &(name)}
#define list_entry(node, type, member) ((type *)((char *)(node) - offsetof(type, member)))
#define list_for_each(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)
/* Safe against removal of `pos` inside the loop. */
#define list_for_each_safe(pos, tmp, head)                                                         \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)

static inline void
list_init(struct list *l)
{
    l->prev = l;
    l->next = l;
}

static inline bool
list_empty(const struct list *l)
{
    return l->next == l;
}

static inline void
list_insert_before(struct list *at, struct list *node)
{
    node->prev = at->prev;
    node->next = at;
    at->prev->next = node;
    at->prev = node;
}

/* Append at the tail. */
static inline void
list_push(struct list *head, struct list *node)
{
    list_insert_before(head, node);
}

static inline void
list_push_front(struct list *head, struct list *node)
{
    list_insert_before(head->next, node);
}

/* Unlink `node` and leave it pointing at itself, so a second removal is harmless. */
static inline void
list_remove(struct list *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    list_init(node);
}

static inline struct list *
list_first(const struct list *head)
{
    return head->next == head ? NULL : head->next;
}

#endif
