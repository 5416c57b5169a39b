/*
 * vec_json.h - a minimal reader for firmware_bridge/vectors/protocol_vectors.json (test code only).
 *
 * Reads exactly the flat shape the generator writes: a top-level object whose values are strings,
 * numbers, or arrays of objects; each object's values are strings, numbers or arrays of numbers.
 * Numbers are kept as double (every integer in the file is below 2^53; every float is a float32's exact
 * double). Strings support the JSON escapes; \u only below 0x80. Anything else is a parse error.
 */
#ifndef VEC_JSON_H
#define VEC_JSON_H

#include <stddef.h>

typedef enum jv_kind { JV_NUM, JV_STR, JV_NUMS, JV_ROWS } jv_kind;

typedef struct jv_obj jv_obj;

typedef struct jv_value {
    char *key;
    jv_kind kind;
    double num;     /* JV_NUM */
    char *str;      /* JV_STR, NUL-terminated */
    double *nums;   /* JV_NUMS */
    jv_obj *rows;   /* JV_ROWS (top level only) */
    size_t n;       /* elements of nums or rows */
} jv_value;

struct jv_obj {
    jv_value *fields;
    size_t n;
};

/* Parse path into *doc (heap-allocated; free with jv_free). Returns 0, or -1 with a message in err. */
int jv_load(const char *path, jv_obj *doc, char *err, size_t err_size);
void jv_free(jv_obj *doc);

/* The field key of obj, or NULL. */
const jv_value *jv_get(const jv_obj *obj, const char *key);
/* Typed getters: abort the test program with a message when the key is missing or of another kind. */
double jv_num(const jv_obj *obj, const char *key);
const char *jv_str(const jv_obj *obj, const char *key);
const double *jv_nums(const jv_obj *obj, const char *key, size_t *n);
const jv_obj *jv_rows(const jv_obj *doc, const char *key, size_t *n);

#endif /* VEC_JSON_H */
