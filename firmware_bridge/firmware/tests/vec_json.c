/* vec_json.c - the flat-JSON reader of the C unit tests. See vec_json.h. */
#include "vec_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *p;
    const char *end;
    const char *start;
    char *err;
    size_t err_size;
    int failed;
} parser;

static void fail(parser *ps, const char *what)
{
    if (!ps->failed) {
        snprintf(ps->err, ps->err_size, "JSON error at offset %ld: %s", (long)(ps->p - ps->start), what);
    }
    ps->failed = 1;
}

static void *grow(void *ptr, size_t count, size_t size)
{
    void *q = realloc(ptr, (count + 1) * size);
    if (q == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return q;
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t')) {
        ps->p++;
    }
}

static int expect(parser *ps, char c)
{
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != c) {
        char msg[32];
        snprintf(msg, sizeof msg, "expected '%c'", c);
        fail(ps, msg);
        return 0;
    }
    ps->p++;
    return 1;
}

static int peek(parser *ps, char c)
{
    skip_ws(ps);
    return ps->p < ps->end && *ps->p == c;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static char *parse_string(parser *ps)
{
    char *out;
    size_t n = 0;
    const char *q;
    if (!expect(ps, '"')) {
        return NULL;
    }
    /* The raw text up to the closing quote bounds the decoded string (escapes only shorten it). */
    for (q = ps->p; q < ps->end && *q != '"'; ++q) {
        if (*q == '\\' && q + 1 < ps->end) {
            ++q;
        }
    }
    out = malloc((size_t)(q - ps->p) + 1);
    if (out == NULL) {
        exit(2);
    }
    while (ps->p < ps->end && *ps->p != '"') {
        char c = *ps->p++;
        if ((unsigned char)c < 0x20) {
            fail(ps, "control character in string");
            free(out);
            return NULL;
        }
        if (c == '\\') {
            if (ps->p >= ps->end) break;
            c = *ps->p++;
            switch (c) {
            case '"': case '\\': case '/': break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                int i, v = 0;
                for (i = 0; i < 4; ++i) {
                    int d = ps->p < ps->end ? hex_digit(*ps->p++) : -1;
                    if (d < 0) {
                        fail(ps, "bad \\u escape");
                        free(out);
                        return NULL;
                    }
                    v = v * 16 + d;
                }
                if (v == 0 || v >= 0x80) {
                    fail(ps, "\\u escape outside 1..0x7f");
                    free(out);
                    return NULL;
                }
                c = (char)v;
                break;
            }
            default:
                fail(ps, "bad escape");
                free(out);
                return NULL;
            }
        }
        out[n++] = c;
    }
    if (!expect(ps, '"')) {
        free(out);
        return NULL;
    }
    out[n] = '\0';
    return out;
}

static double parse_number(parser *ps)
{
    char buf[64];
    size_t n = 0;
    skip_ws(ps);
    while (ps->p < ps->end && n + 1 < sizeof buf && strchr("+-0123456789.eE", *ps->p) != NULL) {
        buf[n++] = *ps->p++;
    }
    buf[n] = '\0';
    if (n == 0) {
        fail(ps, "expected a number");
        return 0.0;
    }
    {
        char *end;
        double v = strtod(buf, &end);
        if (*end != '\0') {
            fail(ps, "bad number");
        }
        return v;
    }
}

/* The items of an array up to its ']' (the '[' already read), each parsed by parse_item into v. */
static void parse_array(parser *ps, void (*parse_item)(parser *, jv_value *), jv_value *v)
{
    if (peek(ps, ']')) {
        ps->p++;
        return;
    }
    for (;;) {
        parse_item(ps, v);
        if (ps->failed) return;
        if (!peek(ps, ',')) {
            expect(ps, ']');
            return;
        }
        ps->p++;
    }
}

static void parse_num_item(parser *ps, jv_value *v)
{
    v->nums = grow(v->nums, v->n, sizeof(double));
    v->nums[v->n++] = parse_number(ps);
}

static void parse_object(parser *ps, jv_obj *obj, int top);

static void parse_row_item(parser *ps, jv_value *v)
{
    v->rows = grow(v->rows, v->n, sizeof(jv_obj));
    parse_object(ps, &v->rows[v->n++], 0);
}

/* A field value inside a row object: string, number or array of numbers. */
static void parse_leaf(parser *ps, jv_value *v)
{
    skip_ws(ps);
    if (peek(ps, '"')) {
        v->kind = JV_STR;
        v->str = parse_string(ps);
    } else if (peek(ps, '[')) {
        ps->p++;
        v->kind = JV_NUMS;
        v->nums = grow(NULL, 0, sizeof(double));
        v->n = 0;
        parse_array(ps, parse_num_item, v);
    } else {
        v->kind = JV_NUM;
        v->num = parse_number(ps);
    }
}

static void parse_object(parser *ps, jv_obj *obj, int top)
{
    obj->fields = NULL;
    obj->n = 0;
    if (!expect(ps, '{')) return;
    if (peek(ps, '}')) {
        ps->p++;
        return;
    }
    for (;;) {
        jv_value *v;
        obj->fields = grow(obj->fields, obj->n, sizeof(jv_value));
        v = &obj->fields[obj->n++];
        memset(v, 0, sizeof *v);
        v->key = parse_string(ps);
        if (ps->failed || !expect(ps, ':')) return;
        if (top && peek(ps, '[')) {
            /* An array of row objects. */
            ps->p++;
            v->kind = JV_ROWS;
            v->rows = grow(NULL, 0, sizeof(jv_obj));
            parse_array(ps, parse_row_item, v);
        } else {
            parse_leaf(ps, v);
        }
        if (ps->failed) return;
        if (peek(ps, ',')) {
            ps->p++;
            continue;
        }
        expect(ps, '}');
        return;
    }
}

int jv_load(const char *path, jv_obj *doc, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    char *text;
    long size;
    parser ps;
    doc->fields = NULL;
    doc->n = 0;
    if (f == NULL) {
        snprintf(err, err_size, "cannot open %s", path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc((size_t)size + 1);
    if (text == NULL || fread(text, 1, (size_t)size, f) != (size_t)size) {
        snprintf(err, err_size, "cannot read %s", path);
        fclose(f);
        free(text);
        return -1;
    }
    fclose(f);
    text[size] = '\0';
    ps.start = ps.p = text;
    ps.end = text + size;
    ps.err = err;
    ps.err_size = err_size;
    ps.failed = 0;
    parse_object(&ps, doc, 1);
    skip_ws(&ps);
    if (!ps.failed && ps.p != ps.end) {
        fail(&ps, "trailing characters");
    }
    free(text);
    if (ps.failed) {
        jv_free(doc);
        return -1;
    }
    return 0;
}

static void free_value(jv_value *v)
{
    size_t i;
    free(v->key);
    free(v->str);
    free(v->nums);
    if (v->rows != NULL) {
        for (i = 0; i < v->n; ++i) {
            jv_free(&v->rows[i]);
        }
        free(v->rows);
    }
}

void jv_free(jv_obj *doc)
{
    size_t i;
    for (i = 0; i < doc->n; ++i) {
        free_value(&doc->fields[i]);
    }
    free(doc->fields);
    doc->fields = NULL;
    doc->n = 0;
}

const jv_value *jv_get(const jv_obj *obj, const char *key)
{
    size_t i;
    for (i = 0; i < obj->n; ++i) {
        if (obj->fields[i].key != NULL && strcmp(obj->fields[i].key, key) == 0) {
            return &obj->fields[i];
        }
    }
    return NULL;
}

static const jv_value *need(const jv_obj *obj, const char *key, jv_kind kind)
{
    const jv_value *v = jv_get(obj, key);
    if (v == NULL || v->kind != kind) {
        const jv_value *name = jv_get(obj, "name");
        fprintf(stderr, "vector %s: field '%s' missing or of the wrong kind\n",
                name != NULL && name->kind == JV_STR ? name->str : "?", key);
        exit(2);
    }
    return v;
}

double jv_num(const jv_obj *obj, const char *key)
{
    return need(obj, key, JV_NUM)->num;
}

const char *jv_str(const jv_obj *obj, const char *key)
{
    return need(obj, key, JV_STR)->str;
}

const double *jv_nums(const jv_obj *obj, const char *key, size_t *n)
{
    const jv_value *v = need(obj, key, JV_NUMS);
    *n = v->n;
    return v->nums;
}

const jv_obj *jv_rows(const jv_obj *doc, const char *key, size_t *n)
{
    const jv_value *v = need(doc, key, JV_ROWS);
    *n = v->n;
    return v->rows;
}
