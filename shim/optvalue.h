/* optvalue.c: an option's value by its kind, parsed and printed (the
 * rows of the table in options.c; private to the two files). */
#ifndef TL_OPTVALUE_H
#define TL_OPTVALUE_H

#include "internal.h"

/* What a row's value is and how it is read. */
enum tl__optkind {
  BOOL,                                    /* 1/0, yes/no, on/off, true/false */
  WORDS,                                   /* one of .words; the value is its index */
  NUMBER,                                  /* a decimal number from .min to .max */
  SIGNAL,                                  /* a signal name or number we may handle; 0 is off */
  PATH,                                    /* a file name, from secure_getenv, kept in .buf */
  STRING,                                  /* any text, from getenv, kept in .buf */
};

/* Row flags. */
#define BOOL_WORDS 1u                      /* WORDS: the boolean spellings are words 0 and 1 */
#define SUFFIX 2u                          /* NUMBER: an optional K or M multiplies by 2^10 or 2^20 */
#define POW2 4u                            /* NUMBER: rounded up to a power of two */

struct tl__option {
  const char *name;
  enum tl__optkind kind;
  unsigned flags;
  long dflt;                               /* the default of a number-like kind */
  const struct tl__option *follows;        /* or else: on when this earlier row is on */
  long min, max;                           /* NUMBER */
  const char *const *words;                /* WORDS, ending with NULL */
  size_t field;                            /* offsetof the int, or the const char *, in tl__opt */
  char *buf;                               /* PATH, STRING: the kept copy (the environment may change) */
  size_t size;
  const char *unset;                       /* PATH, STRING: what "unset" means, as VERBOSE prints it */
  const char *ignored;                     /* PATH, STRING: what happens when the value cannot be used */
  const char *description;
};

int tl__optvalue_bool(const char *v);      /* 1 or 0 for a boolean word, -1 otherwise */
int tl__optvalue_signal(const char *v);    /* a signal we may use, 0 for off, or -1 */
long tl__optvalue_number(const struct tl__option *o, const char *v); /* a NUMBER row's value, or -1 */
void tl__optvalue_expected(const struct tl__option *o, char *buf, size_t size);
void tl__optvalue_text(const struct tl__option *o, long v, const char *text, char *buf, size_t size);

#endif /* TL_OPTVALUE_H */
