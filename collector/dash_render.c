/* SPDX-License-Identifier: MIT */
/*
 * collector/dash_render.c - the answers as a page (HTML with inline SVG,
 * no script, no outside asset, a table under every chart so a text-mode
 * browser shows everything), as text tables, and as one JSON document.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"
#include "text.h"

/* -------------------------------------------------------------- numbers */

static double absd(double v) { return v < 0 ? -v : v; }

static void thousands(char *out, size_t size, double v)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%.0f", absd(v));
    size_t n = strlen(raw), o = 0;
    if (v < 0 && o + 1 < size)
        out[o++] = '-';
    for (size_t i = 0; i < n && o + 2 < size; i++) {
        out[o++] = raw[i];
        if ((n - i - 1) % 3 == 0 && i + 1 < n)
            out[o++] = ',';
    }
    out[o] = '\0';
}

/* The text of a cell as shown to people; `k` for hidden ones. */
static void cell_show(char *out, size_t size, const dash_cell *c, unsigned k)
{
    switch (c->kind) {
    case DASH_TEXT: snprintf(out, size, "%s", c->s); break;
    case DASH_INT: thousands(out, size, c->v); break;
    case DASH_REAL: snprintf(out, size, "%.6g", c->v); break;
    case DASH_PCT: snprintf(out, size, c->v < 0.1 ? "%.1f%%" : "%.0f%%", c->v * 100); break;
    case DASH_DELTA: snprintf(out, size, absd(c->v) < 0.1 ? "%+.1f%%" : "%+.0f%%", c->v * 100); break;
    case DASH_MS:
        if (c->v < 1000)
            snprintf(out, size, "%.0f ms", c->v);
        else if (c->v < 60000)
            snprintf(out, size, "%.1f s", c->v / 1000);
        else if (c->v < 3600000)
            snprintf(out, size, "%.1f min", c->v / 60000);
        else
            snprintf(out, size, "%.1f h", c->v / 3600000);
        break;
    case DASH_HIDDEN: snprintf(out, size, "< %u", k); break;
    default: out[0] = '\0';
    }
}

static const dash_cell *cell_at(const dash_table *t, size_t row, int col)
{
    return &t->cells[row * t->ncols + col];
}

static int is_num(const dash_cell *c)
{
    return c->kind == DASH_INT || c->kind == DASH_REAL || c->kind == DASH_PCT || c->kind == DASH_DELTA ||
           c->kind == DASH_MS;
}

/* ----------------------------------------------------------------- HTML */

/* Escapes s for HTML text and attributes; bytes that are not UTF-8 (a
 * writer other than tel may send them) become U+FFFD. */
static int esc(tel_buf *b, const char *s)
{
    int bad = 0;
    for (; *s && !bad; s++) {
        size_t n = tel__utf8_seq((const uint8_t *)s, strlen(s));
        if (n == 0) {
            bad = tel__buf_puts(b, "\xef\xbf\xbd");
            continue;
        }
        if (n > 1) {
            bad = tel__buf_append(b, s, n);
            s += n - 1;
            continue;
        }
        switch (*s) {
        case '<': bad = tel__buf_puts(b, "&lt;"); break;
        case '>': bad = tel__buf_puts(b, "&gt;"); break;
        case '&': bad = tel__buf_puts(b, "&amp;"); break;
        case '"': bad = tel__buf_puts(b, "&quot;"); break;
        case '\'': bad = tel__buf_puts(b, "&#39;"); break;
        default: bad = tel__buf_append(b, s, 1);
        }
    }
    return bad;
}

static const char *const palette[] = {
    "#3b6fb6", "#e08a2c", "#4a9d5b", "#c0504d", "#8064a2", "#2aa6a6",
    "#b8860b", "#d46fa0", "#6b7b8c", "#7fb800", "#1f3f73",
};
#define NPALETTE (sizeof palette / sizeof palette[0])

static const char css[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;"
    "color:#1d2733;background:#f4f6f9}"
    "header{background:#1f3f73;color:#fff;padding:14px 28px}"
    "header h1{margin:0;font-size:21px}header p{margin:4px 0 0;color:#cfdcf0}"
    "main{max-width:1180px;margin:0 auto;padding:8px 24px 40px}"
    "form{display:flex;flex-wrap:wrap;gap:10px 18px;align-items:end;background:#fff;"
    "padding:12px 16px;border-radius:8px;margin:16px 0;box-shadow:0 1px 2px #0002}"
    "label{display:flex;flex-direction:column;font-size:12px;color:#566}"
    "select,input{font:inherit;padding:3px 6px}button{font:inherit;padding:4px 14px;"
    "background:#1f3f73;color:#fff;border:0;border-radius:4px}"
    "nav{font-size:13px;margin:0 0 8px}nav a{margin-right:12px;color:#1f3f73}"
    "section{background:#fff;border-radius:8px;padding:6px 18px 14px;margin:14px 0;"
    "box-shadow:0 1px 2px #0002}"
    "h2{font-size:18px;margin:10px 0 2px;color:#1f3f73}h3{font-size:15px;margin:14px 0 4px}"
    ".note{color:#667;font-size:12px;margin:0 0 6px}.empty{color:#889;font-style:italic}"
    "svg{display:block;max-width:100%;height:auto;margin:4px 0}"
    "svg text{font:11px system-ui,sans-serif;fill:#445}"
    "details{margin:4px 0 8px}summary{cursor:pointer;color:#1f3f73;font-size:13px}"
    "table{border-collapse:collapse;font-size:13px;margin:4px 0}"
    "th,td{padding:2px 10px;border-bottom:1px solid #e3e7ee;text-align:left}"
    "th{background:#eef2f8}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "td.h{color:#99a;text-align:right}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:0 24px}";

static const struct { const char *id, *title; } sections[] = {
    { "events", "Events" },
    { "installs", "Active installs" },
    { "commands", "Commands" },
    { "versions", "App versions" },
    { "platform", "Platforms and CI" },
    { "metrics", "Metrics" },
    { "options", "Options" },
    { "errors", "Errors" },
    { "spans", "Spans" },
    { "missing", "Missing data" },
};
#define NSECTIONS (sizeof sections / sizeof sections[0])

/* The tables in the order the page shows them: by section, then as
 * answered.  Fills idx (a->ntables entries); returns how many. */
static size_t table_order(const dash_answers *a, size_t *idx)
{
    size_t n = 0;
    for (size_t s = 0; s < NSECTIONS; s++)
        for (size_t i = 0; i < a->ntables; i++)
            if (strcmp(a->tables[i].section, sections[s].id) == 0)
                idx[n++] = i;
    return n;
}

static double col_max(const dash_table *t, int col)
{
    double m = 0;
    for (size_t i = 0; i < t->nrows; i++) {
        const dash_cell *c = cell_at(t, i, col);
        if (is_num(c) && c->v > m)
            m = c->v;
    }
    return m;
}

/* A chart's svg opening; every chart carries the id the tests look for. */
static int svg_open(tel_buf *b, const dash_table *t, int w, int h)
{
    return tel__buf_printf(b, "<svg id=\"chart-%s\" role=\"img\" viewBox=\"0 0 %d %d\" width=\"%d\""
                          " height=\"%d\" xmlns=\"http://www.w3.org/2000/svg\"><title>", t->id, w, h, w, h) ||
           esc(b, t->title) || tel__buf_puts(b, "</title>");
}

/* Bars over time (one per row), value column t->value_col. */
/* Small tables sit two or three to a row, with narrower charts. */
static int narrow(const dash_table *t)
{
    return strcmp(t->section, "platform") == 0 || strcmp(t->id, "installs-per-week") == 0 ||
           strcmp(t->id, "installs-per-month") == 0;
}

static int chart_columns(tel_buf *b, const dash_table *t, unsigned k)
{
    const int W = narrow(t) ? 540 : 1100, H = narrow(t) ? 150 : 180, L = 58, R = 10, T = 16, B = 36;
    double max = col_max(t, t->value_col);
    if (max <= 0)
        max = 1;
    double slot = (double)(W - L - R) / (double)(t->nrows ? t->nrows : 1);
    int bad = svg_open(b, t, W, H);
    char v[64], top[64];
    thousands(top, sizeof top, max);
    bad |= tel__buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ccd\"/>"
                          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#eef\"/>"
                          "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>"
                          "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>",
                          L, H - B, W - R, H - B, L, T, W - R, T, L - 6, T + 4, top, L - 6, H - B);
    for (size_t i = 0; i < t->nrows && !bad; i++) {
        const dash_cell *c = cell_at(t, i, t->value_col), *x = cell_at(t, i, 0);
        double bx = L + slot * (double)i + slot * 0.12, bw = slot * 0.76;
        cell_show(v, sizeof v, c, k);
        if (is_num(c)) {
            double bh = (double)(H - B - T) * c->v / max;
            bad |= tel__buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\""
                                  " fill=\"%s\"><title>", bx, H - B - bh, bw, bh, palette[0]);
        } else
            bad |= tel__buf_printf(b, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"3\""
                                  " fill=\"#bbc\"><title>", bx, H - B - 3, bw);
        bad |= esc(b, x->s ? x->s : "") || tel__buf_puts(b, ": ") || esc(b, v) ||
               tel__buf_puts(b, "</title></rect>");
        /* Dates under the axis: about eight of them, never crowded. */
        size_t every = t->nrows / 8 + 1;
        if (i % every == 0)
            bad |= tel__buf_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", bx + bw / 2,
                                  H - B + 15) || esc(b, x->s ? x->s : "") || tel__buf_puts(b, "</text>");
        if (slot >= 46 && is_num(c))
            bad |= tel__buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>",
                                  bx + bw / 2, H - B - (H - B - T) * c->v / max - 3, v);
    }
    return bad || tel__buf_puts(b, "</svg>\n");
}

static int label_of(char *out, size_t size, const dash_table *t, size_t row)
{
    size_t o = 0;
    out[0] = '\0';
    for (int j = 0; j < t->label_cols; j++) {
        const dash_cell *c = cell_at(t, row, j);
        const char *s = c->s ? c->s : "";
        if (!*s || strcmp(s, "-") == 0)
            continue;
        o += (size_t)snprintf(out + o, o < size ? size - o : 0, "%s%s", o ? " · " : "", s);
    }
    return 0;
}

/* Horizontal bars, one per row (the first 15), labelled. */
static int chart_bars(tel_buf *b, const dash_table *t, unsigned k)
{
    size_t n = t->nrows < 15 ? t->nrows : 15;
    const int W = narrow(t) ? 540 : 1100, L = narrow(t) ? 130 : 300, R = 90, ROW = 22;
    int H = (int)n * ROW + 8;
    double max = col_max(t, t->value_col);
    if (max <= 0)
        max = 1;
    int bad = svg_open(b, t, W, H);
    for (size_t i = 0; i < n && !bad; i++) {
        const dash_cell *c = cell_at(t, i, t->value_col);
        char label[256], v[64];
        label_of(label, sizeof label, t, i);
        cell_show(v, sizeof v, c, k);
        double y = 4 + (double)i * ROW, bw = is_num(c) ? (W - L - R) * (c->v > 0 ? c->v : 0) / max : 0;
        bad |= tel__buf_printf(b, "<text x=\"%d\" y=\"%.0f\" text-anchor=\"end\">", L - 8, y + 15) ||
               esc(b, label) || tel__buf_puts(b, "</text>");
        bad |= tel__buf_printf(b, "<rect x=\"%d\" y=\"%.0f\" width=\"%.1f\" height=\"16\" fill=\"%s\">"
                              "<title>", L, y + 2, bw < 1 ? 1 : bw,
                              is_num(c) ? palette[i % NPALETTE] : "#bbc") ||
               esc(b, label) || tel__buf_puts(b, ": ") || esc(b, v) || tel__buf_puts(b, "</title></rect>");
        bad |= tel__buf_printf(b, "<text x=\"%.0f\" y=\"%.0f\">", L + (bw < 1 ? 1 : bw) + 6, y + 15) ||
               esc(b, v) || tel__buf_puts(b, "</text>");
    }
    return bad || tel__buf_puts(b, "</svg>\n");
}

/* One line per column over the rows (weeks), with a legend. */
static int chart_lines(tel_buf *b, const dash_table *t, unsigned k)
{
    const int W = 1100, H = 230, L = 58, R = 190, T = 14, B = 34;
    double max = 0;
    for (int j = 1; j < t->ncols; j++)
        if (col_max(t, j) > max)
            max = col_max(t, j);
    if (max <= 0)
        max = 1;
    double step = t->nrows > 1 ? (double)(W - L - R) / (double)(t->nrows - 1) : 0;
    char top[64], v[64];
    thousands(top, sizeof top, max);
    int bad = svg_open(b, t, W, H);
    bad |= tel__buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ccd\"/>"
                          "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>"
                          "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>",
                          L, H - B, W - R, H - B, L - 6, T + 4, top, L - 6, H - B);
    for (size_t i = 0; i < t->nrows && !bad; i++) {
        size_t every = t->nrows / 8 + 1;
        if (i % every == 0)
            bad |= tel__buf_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
                                  L + step * (double)i, H - B + 15) ||
                   esc(b, cell_at(t, i, 0)->s) || tel__buf_puts(b, "</text>");
    }
    for (int j = 1; j < t->ncols && !bad; j++) {
        const char *color = palette[(j - 1) % NPALETTE];
        bad |= tel__buf_printf(b, "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"%s\" points=\"", color);
        for (size_t i = 0; i < t->nrows && !bad; i++) {
            const dash_cell *c = cell_at(t, i, j);
            if (is_num(c))
                bad |= tel__buf_printf(b, "%.1f,%.1f ", L + step * (double)i,
                                      H - B - (H - B - T) * c->v / max);
        }
        bad |= tel__buf_puts(b, "\"/>");
        for (size_t i = 0; i < t->nrows && !bad; i++) {
            const dash_cell *c = cell_at(t, i, j);
            cell_show(v, sizeof v, c, k);
            double y = is_num(c) ? H - B - (H - B - T) * c->v / max : H - B;
            bad |= tel__buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" fill=\"%s\"><title>",
                                  L + step * (double)i, y, is_num(c) ? "3" : "2",
                                  is_num(c) ? color : "#bbc") ||
                   esc(b, cell_at(t, i, 0)->s) || tel__buf_puts(b, " ") || esc(b, t->cols[j]) ||
                   tel__buf_puts(b, ": ") || esc(b, v) || tel__buf_puts(b, "</title></circle>");
        }
        bad |= tel__buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                              "<text x=\"%d\" y=\"%d\">", W - R + 14, T + (j - 1) * 18, color,
                              W - R + 32, T + (j - 1) * 18 + 10) ||
               esc(b, t->cols[j]) || tel__buf_puts(b, "</text>");
    }
    return bad || tel__buf_puts(b, "</svg>\n");
}

static int html_table(tel_buf *b, const dash_table *t, unsigned k)
{
    int bad = tel__buf_puts(b, "<table><thead><tr>");
    for (int j = 0; j < t->ncols && !bad; j++)
        bad |= tel__buf_puts(b, "<th>") || esc(b, t->cols[j]) || tel__buf_puts(b, "</th>");
    bad |= tel__buf_puts(b, "</tr></thead><tbody>\n");
    char v[256];
    for (size_t i = 0; i < t->nrows && !bad; i++) {
        bad |= tel__buf_puts(b, "<tr>");
        for (int j = 0; j < t->ncols && !bad; j++) {
            const dash_cell *c = cell_at(t, i, j);
            cell_show(v, sizeof v, c, k);
            bad |= tel__buf_puts(b, c->kind == DASH_HIDDEN ? "<td class=\"h\">" :
                                   is_num(c) ? "<td class=\"n\">" : "<td>") ||
                   esc(b, v) || tel__buf_puts(b, "</td>");
        }
        bad |= tel__buf_puts(b, "</tr>\n");
    }
    return bad || tel__buf_puts(b, "</tbody></table>\n");
}

static int html_one(tel_buf *b, const dash_table *t, unsigned k)
{
    int bad = tel__buf_printf(b, "<div class=\"part\" id=\"t-%s\"><h3>", t->id) || esc(b, t->title) ||
              tel__buf_puts(b, "</h3>\n");
    if (t->note)
        bad |= tel__buf_puts(b, "<p class=\"note\">") || esc(b, t->note) || tel__buf_puts(b, "</p>\n");
    if (t->nrows == 0) {
        /* The chart is still there, saying what is missing. */
        return bad || tel__buf_printf(b, "<svg id=\"chart-%s\" viewBox=\"0 0 1100 28\" width=\"1100\""
                                     " height=\"28\" xmlns=\"http://www.w3.org/2000/svg\"><text x=\"4\""
                                     " y=\"18\">", t->id) ||
               esc(b, t->empty ? t->empty : "nothing") || tel__buf_puts(b, "</text></svg>\n<p class=\"empty\">") ||
               esc(b, t->empty ? t->empty : "nothing") || tel__buf_puts(b, "</p></div>\n");
    }
    switch (t->chart) {
    case DASH_CHART_COLUMNS: bad |= chart_columns(b, t, k); break;
    case DASH_CHART_BARS: bad |= chart_bars(b, t, k); break;
    case DASH_CHART_LINES: bad |= chart_lines(b, t, k); break;
    default: break;
    }
    /* Long tables fold away under their chart; text browsers show them. */
    int fold = t->nrows > 12;
    if (fold)
        bad |= tel__buf_printf(b, "<details><summary>table (%zu rows)</summary>\n", t->nrows);
    bad |= html_table(b, t, k);
    if (fold)
        bad |= tel__buf_puts(b, "</details>\n");
    return bad || tel__buf_puts(b, "</div>\n");
}

static int html_select(tel_buf *b, const char *name, const char *label, char **opts, size_t n,
                       const char *cur)
{
    int bad = tel__buf_printf(b, "<label>%s<select name=\"%s\"><option value=\"\">all</option>", label, name);
    for (size_t i = 0; i < n && !bad; i++)
        bad |= tel__buf_puts(b, "<option value=\"") || esc(b, opts[i]) ||
               tel__buf_puts(b, strcmp(opts[i], cur) == 0 ? "\" selected>" : "\">") ||
               esc(b, opts[i]) || tel__buf_puts(b, "</option>");
    return bad || tel__buf_puts(b, "</select></label>\n");
}

static int html_form(tel_buf *b, const dash_answers *a)
{
    const dash_filter *f = &a->filter;
    char from[16], to[16];
    dash_day_text(f->from_day, from);
    dash_day_text(f->to_day, to);
    int bad = tel__buf_puts(b, "<form method=\"get\" action=\"/\">\n") ||
              html_select(b, "app", "app", a->apps, a->napps, f->app) ||
              html_select(b, "version", "app version", a->versions, a->nversions, f->version) ||
              tel__buf_printf(b, "<label>from<input type=\"date\" name=\"from\" value=\"%s\"></label>\n"
                             "<label>to<input type=\"date\" name=\"to\" value=\"%s\"></label>\n", from, to) ||
              tel__buf_printf(b, "<label>CI<select name=\"ci\"><option value=\"\"%s>both</option>"
                             "<option value=\"yes\"%s>in CI</option><option value=\"no\"%s>not in CI"
                             "</option></select></label>\n", f->ci < 0 ? " selected" : "",
                             f->ci == 1 ? " selected" : "", f->ci == 0 ? " selected" : "") ||
              tel__buf_puts(b, "<button type=\"submit\">Show</button></form>\n");
    return bad;
}

int dash_render_html(tel_buf *b, const dash_answers *a)
{
    const dash_filter *f = &a->filter;
    char from[16], to[16];
    dash_day_text(f->from_day, from);
    dash_day_text(f->to_day, to);
    int bad = tel__buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                              "<meta name=\"viewport\" content=\"width=device-width\">"
                              "<title>tel usage") ||
              (f->app[0] && (tel__buf_puts(b, ": ") || esc(b, f->app))) ||
              tel__buf_printf(b, "</title><style>%s</style></head><body>\n<header><h1>Usage of ", css) ||
              esc(b, f->app[0] ? f->app : "every app") ||
              tel__buf_printf(b, "</h1><p>%s to %s (UTC)", from, to) ||
              (f->version[0] && (tel__buf_puts(b, " · version ") || esc(b, f->version))) ||
              tel__buf_printf(b, "%s · aggregates only: a number backed by fewer than %u installs"
                             " shows as &lt; %u, a name sent by fewer is folded into"
                             " &ldquo;other&rdquo;</p></header>\n<main>\n",
                             f->ci == 1 ? " · in CI" : f->ci == 0 ? " · not in CI" : "", f->k, f->k) ||
              html_form(b, a) || tel__buf_puts(b, "<nav>");
    for (size_t s = 0; s < NSECTIONS && !bad; s++)
        bad |= tel__buf_printf(b, "<a href=\"#s-%s\">%s</a>", sections[s].id, sections[s].title);
    bad |= tel__buf_puts(b, "</nav>\n");
    for (size_t s = 0; s < NSECTIONS && !bad; s++) {
        bad |= tel__buf_printf(b, "<section id=\"s-%s\"><h2>%s</h2>\n", sections[s].id, sections[s].title);
        int grid = 0;
        for (size_t i = 0; i < a->ntables && !bad; i++) {
            const dash_table *t = &a->tables[i];
            if (strcmp(t->section, sections[s].id) != 0)
                continue;
            if (narrow(t) != grid)
                bad |= tel__buf_puts(b, grid ? "</div>\n" : "<div class=\"grid\">\n");
            grid = narrow(t);
            bad |= html_one(b, t, f->k);
        }
        if (grid)
            bad |= tel__buf_puts(b, "</div>\n");
        bad |= tel__buf_puts(b, "</section>\n");
    }
    return bad || tel__buf_puts(b, "</main></body></html>\n") ? -1 : 0;
}

/* ----------------------------------------------------------------- text */

/* A cell as text for a terminal: control bytes (an escape sequence a
 * client put in a command name) become '?'. */
static void cell_plain(char *out, size_t size, const dash_cell *c, unsigned k)
{
    cell_show(out, size, c, k);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

/* East Asian wide and fullwidth blocks, and the emoji most terminals
 * draw two columns wide: enough for names of commands and options, not a
 * full Unicode width table. */
static int wide(uint32_t c)
{
    return (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf && c != 0x303f) ||
           (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0xfe30 && c <= 0xfe4f) ||
           (c >= 0xff00 && c <= 0xff60) || (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
           (c >= 0x1f900 && c <= 0x1f9ff) || (c >= 0x20000 && c <= 0x3fffd);
}

/* The columns s takes on a terminal: one per character, two for wide
 * ones, none for combining marks; a byte that is not UTF-8 shows as one
 * replacement character. */
static size_t text_width(const char *s)
{
    size_t w = 0, len = strlen(s);
    const uint8_t *p = (const uint8_t *)s, *end = p + len;
    while (p < end) {
        size_t n = tel__utf8_seq(p, (size_t)(end - p));
        if (n <= 1) {
            w++;
            p++;
            continue;
        }
        uint32_t c = p[0] & (0x7f >> n);
        for (size_t i = 1; i < n; i++)
            c = c << 6 | (p[i] & 0x3f);
        w += (c >= 0x300 && c <= 0x36f) || (c >= 0x200b && c <= 0x200f) ? 0 : wide(c) ? 2 : 1;
        p += n;
    }
    return w;
}

/* s, then spaces up to `width` columns (left-aligned), or the spaces
 * first (right-aligned). */
static int padded(tel_buf *b, const char *sep, const char *s, size_t width, int right)
{
    size_t w = text_width(s), pad = width > w ? width - w : 0;
    int bad = tel__buf_puts(b, sep);
    for (size_t i = 0; right && i < pad; i++)
        bad |= tel__buf_puts(b, " ");
    bad |= tel__buf_puts(b, s);
    for (size_t i = 0; !right && i < pad; i++)
        bad |= tel__buf_puts(b, " ");
    return bad;
}

int dash_render_text(tel_buf *b, const dash_answers *a)
{
    const dash_filter *f = &a->filter;
    char from[16], to[16], v[256];
    dash_day_text(f->from_day, from);
    dash_day_text(f->to_day, to);
    int bad = tel__buf_printf(b, "Usage of %s, %s to %s (UTC)%s%s%s; numbers backed by fewer than %u"
                             " installs show as \"< %u\", names sent by fewer fold into \"other\"\n",
                             f->app[0] ? f->app : "every app", from, to,
                             f->version[0] ? ", version " : "", f->version,
                             f->ci == 1 ? ", in CI" : f->ci == 0 ? ", not in CI" : "", f->k, f->k);
    size_t *order = malloc((a->ntables + 1) * sizeof *order), n = order ? table_order(a, order) : 0;
    bad |= !order;
    for (size_t o = 0; o < n && !bad; o++) {
        const dash_table *t = &a->tables[order[o]];
        bad |= tel__buf_printf(b, "\n== %s\n", t->title);
        if (t->nrows == 0) {
            bad |= tel__buf_printf(b, "(%s)\n", t->empty ? t->empty : "nothing");
            continue;
        }
        size_t w[DASH_MAX_COLS];
        for (int j = 0; j < t->ncols; j++) {
            w[j] = text_width(t->cols[j]);
            for (size_t r = 0; r < t->nrows; r++) {
                cell_plain(v, sizeof v, cell_at(t, r, j), f->k);
                if (text_width(v) > w[j])
                    w[j] = text_width(v);
            }
        }
        for (int j = 0; j < t->ncols && !bad; j++)
            bad |= padded(b, j ? "  " : "", t->cols[j], j + 1 < t->ncols ? w[j] : 0, 0);
        bad |= tel__buf_puts(b, "\n");
        for (size_t r = 0; r < t->nrows && !bad; r++) {
            for (int j = 0; j < t->ncols && !bad; j++) {
                const dash_cell *c = cell_at(t, r, j);
                cell_plain(v, sizeof v, c, f->k);
                if (c->kind == DASH_TEXT || c->kind == DASH_EMPTY)
                    bad |= padded(b, j ? "  " : "", v, j + 1 < t->ncols ? w[j] : 0, 0);
                else
                    bad |= padded(b, j ? "  " : "", v, w[j], 1);
            }
            bad |= tel__buf_puts(b, "\n");
        }
    }
    free(order);
    return bad ? -1 : 0;
}

/* ----------------------------------------------------------------- JSON */

static int jstr(tel_buf *b, const char *s) { return tel__json_str(b, s, strlen(s)); }

int dash_render_json(tel_buf *b, const dash_answers *a)
{
    const dash_filter *f = &a->filter;
    char from[16], to[16], v[64];
    dash_day_text(f->from_day, from);
    dash_day_text(f->to_day, to);
    int bad = tel__buf_printf(b, "{\"from\":\"%s\",\"to\":\"%s\",\"app\":", from, to) ||
              (f->app[0] ? jstr(b, f->app) : tel__buf_puts(b, "null")) ||
              tel__buf_puts(b, ",\"version\":") ||
              (f->version[0] ? jstr(b, f->version) : tel__buf_puts(b, "null")) ||
              tel__buf_printf(b, ",\"ci\":%s,\"min_installs\":%u,\"hidden\":\"< %u\",\"tables\":[",
                             f->ci < 0 ? "null" : f->ci ? "true" : "false", f->k, f->k);
    size_t *order = malloc((a->ntables + 1) * sizeof *order), n = order ? table_order(a, order) : 0;
    bad |= !order;
    for (size_t o = 0; o < n && !bad; o++) {
        const dash_table *t = &a->tables[order[o]];
        bad |= tel__buf_printf(b, "%s\n{\"id\":\"%s\",\"section\":\"%s\",\"title\":", o ? "," : "",
                              t->id, t->section) || jstr(b, t->title) || tel__buf_puts(b, ",\"columns\":[");
        for (int j = 0; j < t->ncols && !bad; j++)
            bad |= (j && tel__buf_puts(b, ",")) || jstr(b, t->cols[j]);
        bad |= tel__buf_puts(b, "],\"rows\":[");
        for (size_t r = 0; r < t->nrows && !bad; r++) {
            bad |= tel__buf_puts(b, r ? ",[" : "[");
            for (int j = 0; j < t->ncols && !bad; j++) {
                const dash_cell *c = cell_at(t, r, j);
                bad |= j && tel__buf_puts(b, ",");
                if (c->kind == DASH_TEXT)
                    bad |= jstr(b, c->s);
                else if (c->kind == DASH_HIDDEN) {
                    cell_show(v, sizeof v, c, f->k);
                    bad |= jstr(b, v);
                } else if (is_num(c))
                    bad |= tel__buf_printf(b, c->kind == DASH_INT ? "%.0f" : "%.15g", c->v);
                else
                    bad |= tel__buf_puts(b, "null");
            }
            bad |= tel__buf_puts(b, "]");
        }
        bad |= tel__buf_puts(b, "]}");
    }
    free(order);
    return bad || tel__buf_puts(b, "]}\n") ? -1 : 0;
}
