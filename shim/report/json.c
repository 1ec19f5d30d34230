#include "../internal.h"
#include "json.h"
#include "text.h"
#include "scratch.h"
#include "gather.h"
#include "group.h"
#include "../message.h"
#include "../options.h"
#include "../backtrace.h"
#include "../keys.h"
#include "../drops.h"
#include "../writer.h"
#include "../symbolize.h"
#include "../reach.h"

#include <string.h>

/* ------------------------------------------------------------------------
 * Printing: JSON
 *
 * One document, written in lines that each begin with "tasklocal: " (as
 * every line of the library does): the document is the text of the lines
 * from "tasklocal: {" to "tasklocal: }", without that prefix. A line is
 * at most some 900 bytes: strings are cut to fit.
 * ------------------------------------------------------------------------ */

#define JSON_LINE 880
#define JSON_STR_MAX 400

struct json {
  struct tl__job *j;
  size_t len;
  char buf[JSON_LINE + JSON_STR_MAX + 64];
};

static void json_flush(struct json *w)
{
  if (w->len == 0)
    return;
  w->buf[w->len] = '\0';
  tl__job_line(w->j, "%s", w->buf);
  w->len = 0;
}

static void json_raw(struct json *w, const char *s)
{
  size_t n = strlen(s);
  if (w->len + n > JSON_LINE)
    json_flush(w);
  if (n > sizeof w->buf - 1 - w->len)
    n = sizeof w->buf - 1 - w->len;
  memcpy(w->buf + w->len, s, n);
  w->len += n;
}

static void json_fmt(struct json *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void json_fmt(struct json *w, const char *fmt, ...)
{
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  tl__format(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  json_raw(w, tmp);
}

/* A JSON string, escaped, and cut (at a character's start) when long. */
static void json_str(struct json *w, const char *s)
{
  char out[JSON_STR_MAX + 8];
  size_t o = 0;
  out[o++] = '"';
  for (const unsigned char *p = (const unsigned char *)(s != NULL ? s : ""); *p; p++) {
    char e[8];
    size_t n;
    if (*p == '"' || *p == '\\')
      n = (size_t)tl__formatf(e, sizeof e, "\\%c", *p);
    else if (*p < 0x20)
      n = (size_t)tl__formatf(e, sizeof e, "\\u%04x", *p);
    else
      e[0] = (char)*p, n = 1;
    if (o + n > JSON_STR_MAX) {
      while (o > 1 && ((unsigned char)out[o - 1] & 0xc0) == 0x80)
        o--;
      if (o > 1 && ((unsigned char)out[o - 1] & 0x80))
        o--;
      break;
    }
    memcpy(out + o, e, n);
    o += n;
  }
  out[o++] = '"';
  out[o] = '\0';
  json_raw(w, out);
}

static void json_frame(struct json *w, const struct tl__sym *f, int last)
{
  json_fmt(w, "{\"pc\": \"0x%lx\", \"function\": ", (unsigned long)f->pc);
  if (f->func[0] != '\0')
    json_str(w, f->func);
  else
    json_raw(w, "null");
  json_raw(w, ", \"file\": ");
  if (f->line > 0 && f->file[0] != '\0')
    json_str(w, f->file);
  else
    json_raw(w, "null");
  json_fmt(w, ", \"line\": %d, \"offset\": %lu, \"module\": ", f->line, f->offset);
  if (f->module[0] != '\0')
    json_str(w, f->module);
  else
    json_raw(w, "null");
  json_fmt(w, ", \"module_offset\": %lu, \"inlined\": %s, \"source\": \"%s\"}%s", f->module_offset,
      f->inlined ? "true" : "false", tl__sym_source_name(f->source), last ? "" : ",");
  json_flush(w);
}

/* A backtrace as an array of frames, inlined calls as frames of their own. */
static void json_frames(struct json *w, const uintptr_t *pc, int n, int ret)
{
  json_raw(w, "[");
  json_flush(w);
  struct tl__sym f[TL__SYM_INLINE_MAX];
  for (int i = 0; i < n; i++) {
    int m = tl__sym_lookup(pc[i], ret, f, TL__SYM_INLINE_MAX);
    for (int s = 0; s < m; s++)
      json_frame(w, &f[s], i == n - 1 && s == m - 1);
  }
  json_raw(w, "]");
}

static void json_entry(struct json *w, void (*entry)(void))
{
  if (entry == NULL) {
    json_raw(w, "null");
    return;
  }
  struct tl__sym f[TL__SYM_INLINE_MAX];
  int m = tl__sym_lookup((uintptr_t)entry, 0, f, TL__SYM_INLINE_MAX);
  json_frame(w, &f[m - 1], 1);
}

static const char *state_word(uint32_t state)
{
  switch (state) {
  case TL__NEW:
    return "never started";
  case TL__SUSPENDED:
    return "suspended";
  case TL__ABANDONED:
    return "abandoned";
  default:
    return "running";
  }
}

static void json_group(struct tl__job *j, struct json *w, const struct group *g, int last)
{
  const struct report_task *r = &tl__report_scratch.recs[g->first];
  json_fmt(w, "{\"count\": %llu, \"ids\": [", (unsigned long long)g->count);
  for (uint64_t i = 0; i < g->count && i < IDS_SHOWN; i++)
    json_fmt(w, "%s%llu", i > 0 ? ", " : "", (unsigned long long)g->ids[i]);
  json_fmt(w, "], \"id\": %llu, \"name\": ", (unsigned long long)r->id);
  if (r->name != 0 && g->same_name)
    json_str(w, tl__report_scratch.pool + r->name - 1);
  else
    json_raw(w, "null");
  json_fmt(w, ", \"state\": \"%s\", \"kind\": \"%s\"", state_word(r->state), tl__report_kind_name(r->kind));
  if (r->state == TL__RUNNING)
    json_fmt(w, ", \"running\": \"%s\", \"running_on\": %llu",
        r->here ? (j->kind == TL__JOB_LEAK ? "exit was called in it" : "it called tl_dump")
                : r->running_on != 0 ? "on another thread" : "",
        (unsigned long long)r->running_on);
  if (g->same_parent)
    json_fmt(w, ", \"parent\": %llu", (unsigned long long)r->parent);
  else
    json_raw(w, ", \"parent\": null");
  json_raw(w, ", \"entry\": ");
  json_flush(w);
  json_entry(w, r->entry);
  json_raw(w, ", \"created\": ");
  const uintptr_t *pc;
  int n;
  tl__report_depot_frames(r->created, &pc, &n);
  if (n > 0)
    json_frames(w, pc, n, 1);
  else
    json_raw(w, "null");
  if (r->state == TL__SUSPENDED) {
    json_raw(w, ", \"suspended\": {\"frames\": ");
    tl__report_depot_frames(r->suspended, &pc, &n);
    if (n > 0)
      json_frames(w, pc, n, 1);
    else
      json_raw(w, r->unwound == 0 ? "[]" : "null");
    json_raw(w, ", \"tail_call\": ");
    json_raw(w, r->unwound == 0 ? "true" : "false");
    json_raw(w, ", \"unknown\": ");
    if (r->unwound < 0)
      json_str(w, r->why);
    else
      json_raw(w, "null");
    json_raw(w, ", \"unreliable_shared_with\": ");
    if (g->key.shared)
      json_fmt(w, "%llu}", (unsigned long long)r->shared_with);
    else
      json_raw(w, "null}");
  } else if (r->state == TL__RUNNING && r->here && j->here_n > 0) {
    json_raw(w, ", \"running_at\": ");
    json_frames(w, j->here_bt, j->here_n, 1);
  }
  json_fmt(w, ", \"locals\": {\"count\": %llu, \"first_task_count\": %llu, \"held_when_abandoned\": %s, \"values\": [",
      (unsigned long long)g->nloc, (unsigned long long)r->nloc, r->state == TL__ABANDONED ? "true" : "false");
  const struct local *l = (const struct local *)(tl__report_scratch.pool + r->loc);
  for (uint32_t i = 0; i < r->nlisted; i++) {
    char name[TL__NAME_LEN];
    tl__safe_str(name, sizeof name, tl__key_name(l[i].key));
    json_fmt(w, "%s{\"key\": %llu, \"name\": ", i > 0 ? ", " : "", (unsigned long long)l[i].key);
    if (name[0] != '\0')
      json_str(w, name);
    else
      json_raw(w, "null");
    json_fmt(w, ", \"value\": \"%p\"}", l[i].value);
  }
  json_raw(w, "]}}");
  json_raw(w, last ? "" : ",");
  json_flush(w);
}

static void json_drops(struct json *w, uint64_t n)
{
  int first = 1;
  for (uint64_t i = 0; i < n && i < TL__DROPS_KEPT; i++) {
    const struct tl__drop *d = tl__drop_get(i);
    if (d == NULL)
      continue;
    char key[TL__NAME_LEN];
    tl__safe_str(key, sizeof key, d->key_name);
    json_fmt(w, "%s{\"value\": \"%p\", \"key\": %llu, \"key_name\": ", first ? "" : ",", d->value,
        (unsigned long long)d->key);
    first = 0;
    if (key[0] != '\0')
      json_str(w, key);
    else
      json_raw(w, "null");
    json_fmt(w, ", \"task\": %llu, \"task_name\": ", (unsigned long long)d->task);
    if (d->task_name[0] != '\0')
      json_str(w, d->task_name);
    else
      json_raw(w, "null");
    json_raw(w, ", \"when\": ");
    json_str(w, tl__report_drop_when(d));
    json_raw(w, ", \"entry\": ");
    json_flush(w);
    json_entry(w, d->entry);
    json_raw(w, ", \"set_at\": ");
    if (d->set_n > 0)
      json_frames(w, d->set, (int)d->set_n, 1);
    else
      json_raw(w, "null");
    json_raw(w, ", \"created\": ");
    if (d->bt_n > 0 && d->how != TL__DROP_THREAD_EXIT)
      json_frames(w, d->bt, (int)d->bt_n, 1);
    else
      json_raw(w, "null");
    json_raw(w, "}");
    json_flush(w);
  }
}

void tl__report_print_json(struct tl__job *j, const struct totals *t)
{
  struct json w = {.j = j};
  /* A forked process's lines end with its pid in text; here the document
   * says it, and nothing may follow a line's JSON. */
  int tag = j->tag;
  j->tag = 0;
  json_raw(&w, "{");
  json_flush(&w);
  json_fmt(&w, "\"report\": \"%s\", \"pid\": %d, \"tasks\": %llu, \"locals\": %llu, ", t->what, (int)j->pid,
      (unsigned long long)t->tasks, (unsigned long long)t->locals);
  json_fmt(&w, "\"groups_total\": %u, \"groups_described\": %u, \"report_max\": %u, ",
      (unsigned)(tl__report_scratch.ngroups ? tl__report_scratch.ngroups - 1 : 0),
      (unsigned)t->described, (unsigned)tl__opt.report_max);
  json_fmt(&w, "\"tasks_not_described\": %llu, \"abandoned_not_kept\": %llu, \"groups\": [",
      (unsigned long long)t->undescribed, (unsigned long long)t->unkept);
  json_flush(&w);
  for (uint32_t i = 0; i < t->described; i++)
    json_group(j, &w, &tl__report_scratch.groups[tl__report_scratch.group_order[i]], i + 1 == t->described);
  json_fmt(&w, "], \"dropped_total\": %llu, \"dropped\": [", (unsigned long long)t->drops);
  json_flush(&w);
  json_drops(&w, t->drops);
  json_raw(&w, "], \"kinds\": {");
  json_fmt(&w, "\"leaked\": %llu, \"parked\": %llu, \"undecided\": ", (unsigned long long)t->leaked,
      (unsigned long long)t->parked);
  if (t->undecided != NULL)
    json_str(&w, t->undecided);
  else
    json_raw(&w, "null");
  json_fmt(&w, "}, \"summary\": {\"tasks\": %llu, \"locals\": %llu}", (unsigned long long)t->tasks,
      (unsigned long long)t->locals);
  json_flush(&w);
  json_raw(&w, "}");
  json_flush(&w);
  j->tag = tag;
}
