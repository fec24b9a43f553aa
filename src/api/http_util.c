/*
 * http_util.c - the HTTP layer's text helpers: reason phrases, percent-decoding and query
 * strings (RFC 3986 section 2.1; '+' as a space in queries, as HTML forms send them).
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "api/http.h"

const char *
http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static int
hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
http_percent_decode(const char *p, size_t len, bool plus_is_space, char *out, size_t out_len)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int h = hex_digit(p[i + 1]), l = hex_digit(p[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (char)(h << 4 | l);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == '\0' || o + 1 >= out_len)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return (int)o;
}

bool
http_query_param(const char *query, const char *name, char *out, size_t out_len)
{
    size_t name_len = strlen(name);

    for (const char *p = query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > name_len && strncmp(p, name, name_len) == 0 && p[name_len] == '=')
            return http_percent_decode(p + name_len + 1, len - name_len - 1, true, out,
                                       out_len) >= 0;
        if (len == name_len && strncmp(p, name, name_len) == 0) {
            out[0] = '\0';
            return true;
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}
