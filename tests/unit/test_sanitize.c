/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_sanitize.c - error messages lose their identifying parts
 * and keep their plain words.
 *
 * HOME, USER and LOGNAME are set to known fake values; the host name is
 * whatever this machine reports, so the test reads it the same way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

/* A message, substrings that must be gone, substrings that must stay. */
typedef struct sample {
    const char *in;
    const char *gone[4];
    const char *kept[4];
} sample;

static const sample corpus[] = {
    { "open /home/zelda/projects/secret-plan/config.yaml: permission denied",
      { "/home", "zelda", "secret-plan", "config.yaml" }, { "open ", "<home>", ": permission denied" } },
    { "cannot read ./build/private-out.o", { "build", "private-out" }, { "cannot read <path>" } },
    { "file ~/notes/todo.txt missing", { "notes", "todo" }, { "file <path> missing" } },
    { "C:\\Users\\zelda\\Documents\\taxes.docx not found", { "Users", "zelda", "taxes" }, { "<path> not found" } },
    { "contact bob.smith@example.com for help", { "bob.smith", "example.com" }, { "contact <email> for help" } },
    { "GET https://admin:hunter2@api.example.com:8443/v1/users/42?key=abc failed",
      { "hunter2", "admin", "api.example.com", "/v1/users" }, { "GET <url> failed" } },
    { "connect to 192.168.1.23:5432 refused", { "192.168", "1.23", "5432" }, { "connect to <host> refused" } },
    { "token ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8 rejected", { "ghp_", "A1b2C3" }, { "token <value> rejected" } },
    { "sha deadbeefcafebabe0123456789abcdef mismatch", { "deadbeef", "cafebabe" }, { "sha <token> mismatch" } },
    { "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc",
      { "eyJhbGciOi", "eyJzdWIiOi" }, { "Authorization: Bearer " } },
    { "user zelda lacks access", { "zelda" }, { "user <user> lacks access" } },
    { "owner=zelda,group=staff", { "zelda" }, { "owner=<user>,group=staff" } },
    { "listen on [::1]:8080 or fe80::1ff:fe23:4567:890a", { "fe80", "890a" }, { "listen on <host> or <host>" } },
    { "src/internal/secret_module.c:42: error", { "secret_module", "internal" }, { "<path>", ": error" } },
    { "see clients/acmecorp for details", { "acmecorp" }, { "see <path> for details" } },
    { "cwd=/srv/app/data, retry", { "/srv", "data" }, { "cwd=<path>, retry" } },
    { "loaded file:///home/zelda/x.json", { "zelda", "x.json", "file:" }, { "loaded <url>" } },
    { "HOME is /home/zelda", { "zelda" }, { "HOME is <home>" } },
    { "session 123e4567-e89b-12d3-a456-426614174000 expired", { "123e4567", "426614174000" }, { "session <token> expired" } },
    { "key=AKIAIOSFODNN7EXAMPLE used", { "AKIAIOSFODNN7" }, { "key=<value> used" } },
    { "mail zelda@laptop failed", { "zelda", "laptop" }, { "mail <email> failed" } },
    { "quoted '/etc/ssl/private/key.pem' unreadable", { "/etc", "key.pem" }, { "quoted '<value>' unreadable" } },
    { "login --password=Tr0ub4dor&3 given", { "Tr0ub4dor" }, { "login --password=<value> given" } },
    { "client_secret: x9 denied, api_key=short", { "x9", "short" }, { "client_secret: <value> denied, api_key=<value>" } },
    { "\\\\fileserver\\share\\payroll.xlsx locked", { "fileserver", "payroll" }, { "<path> locked" } },
};

/* Messages that carry nothing secret come out exactly as they went in. */
static const char *const untouched[] = {
    "Deploy failed: 3 services unhealthy (timeout 30s)",
    "I/O error and/or TCP/IP timeout, 1/2 done",
    "version 1.2.3 of lodash@4.17.21 is outdated",
    "std::vector<int> out of range at 12:30:45",
    "internationalization_configuration missing",
    "connection refused; permission denied; no such file or directory",
    "Error: connection reset by peer (ECONNRESET), timed out after 30 s",
    "option --name requires an argument; --force is not allowed with -n",
    "token expired, password is incorrect, key not found, secret missing",
    "can't open the user's file: don't retry",
    "took 3.5s for v1.2.3 in main.c, e.g. now",
    "copy to s3 failed: 1 of 2 parts sent",
    "read / write failed: disk full",
    "caf\xc3\xa9 na\xc3\xafve \xe2\x9c\x93",
};

/* Each kind of private text the sanitiser takes out, whole messages in
 * and out, so that nothing around the placeholder leaks either. */
static const char *const exact[][2] = {
    /* host names and addresses, with their port */
    { "connect to db.acme.internal:5432 refused", "connect to <host> refused" },
    { "x509: certificate is valid for a.example.com, not b.example.com",
      "x509: certificate is valid for <host>, not <host>" },
    { "dial tcp 10.0.0.5:443: connect: connection refused", "dial tcp <host>: connect: connection refused" },
    { "listen [::1]:8080 and 2001:db8::7", "listen <host> and <host>" },
    { "upload of plan.pdf to Files.Acme-Corp.io failed", "upload of <host> to <host> failed" },
    /* quoted values */
    { "invalid value 's3cret' for --name", "invalid value '<value>' for --name" },
    { "open \"client list.txt\": permission denied", "open \"<value>\": permission denied" },
    { "run `deploy acme-prod` again", "run `<value>` again" },
    { "cannot stat \xe2\x80\x98" "foo bar\xe2\x80\x99: No such file or directory",
      "cannot stat \xe2\x80\x98<value>\xe2\x80\x99: No such file or directory" },
    { "bad name 'don't-panic' here", "bad name '<value>' here" },
    { "got \"a \\\"b\\\" c\" back", "got \"<value>\" back" },
    /* URLs of any scheme, authority included */
    { "bucket s3://acme-bkt/key", "bucket <url>" },
    { "push to git+ssh://deploy@git.acme.internal/repo.git denied", "push to <url> denied" },
    { "GET http://10.1.2.3:8080/ failed", "GET <url> failed" },
    /* paths that run past a blank */
    { "file /srv/Client Acme Corp/plan b.pdf", "file <path>" },
    { "open /srv/Client Acme Corp/plan b: no such file or directory",
      "open <path>: no such file or directory" },
    { "read clients/Acme Corp/q3 notes.txt, retrying", "read <path>, retrying" },
    { "C:\\Users\\Client Acme\\plan b.pdf is locked", "<path>" },
    { "copy /a/b to /c/d failed", "copy <path> to <path> failed" },
    { "saved /tmp/x.log. Done", "saved <path>. Done" },
    /* credentials and option values, the names kept */
    { "Authorization: Bearer abc.def.ghi", "Authorization: Bearer <value>" },
    { "Authorization: Basic dXNlcjpwYXNz rejected", "Authorization: Basic <value> rejected" },
    { "Authorization: dXNlcjpwYXNz", "Authorization: <value>" },
    { "--password hunter2", "--password <value>" },
    { "bad --name acme-corp, try --name=other", "bad --name <value>, try --name=<value>" },
    { "--tags=acme,beta --dry-run -u root -p hunter2", "--tags=<value> --dry-run -u <value> -p <value>" },
    { "--name 'Acme Corp' taken", "--name '<value>' taken" },
    { "token abc123 and secret s3, key k", "token <value> and secret <value>, key <value>" },
    { "password: pw apiKey=x x-api-key=y monkey=banana", "password: <value> apiKey=<value> x-api-key=<value> monkey=banana" },
    { "unexpected token '}' at line 4", "unexpected token '<value>' at line 4" },
    /* e-mail addresses, long hex and base64 runs */
    { "mail ops@acme.example failed", "mail <email> failed" },
    { "sha 0123456789abcdef0123456789abcdef bad", "sha <token> bad" },
    { "jwt eyJhbGciOiJIUzI1NiJ9xyz0 bad", "jwt <token> bad" },
};

/* Non-zero when s is valid UTF-8. */
static int valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        if (n == 0)
            return 0;
        for (size_t k = 1; k < n; k++)
            if ((p[k] & 0xc0) != 0x80)
                return 0;
        p += n;
    }
    return 1;
}

static void test_corpus(void)
{
    CHECK_GROUP("sanitize");
    char out[512], name[256];
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        tel__sanitize(corpus[i].in, out, sizeof out);
        for (int k = 0; k < 4 && corpus[i].gone[k]; k++) {
            snprintf(name, sizeof name, "message %zu: '%s' removed", i + 1, corpus[i].gone[k]);
            CHECK(name, strstr(out, corpus[i].gone[k]) == NULL);
        }
        for (int k = 0; k < 4 && corpus[i].kept[k]; k++) {
            snprintf(name, sizeof name, "message %zu: '%s' present", i + 1, corpus[i].kept[k]);
            CHECK(name, strstr(out, corpus[i].kept[k]) != NULL);
        }
        if (check_failures)
            printf("# %zu: %s\n#  -> %s\n", i + 1, corpus[i].in, out);
    }
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        tel__sanitize(exact[i][0], out, sizeof out);
        snprintf(name, sizeof name, "%.60s -> %.60s", exact[i][0], exact[i][1]);
        CHECK(name, strcmp(out, exact[i][1]) == 0);
        if (strcmp(out, exact[i][1]) != 0)
            printf("#  got %s\n", out);
    }
    for (size_t i = 0; i < sizeof untouched / sizeof untouched[0]; i++) {
        tel__sanitize(untouched[i], out, sizeof out);
        snprintf(name, sizeof name, "unchanged: %.60s", untouched[i]);
        CHECK(name, strcmp(out, untouched[i]) == 0);
        if (strcmp(out, untouched[i]) != 0)
            printf("#  -> %s\n", out);
    }
}

static void test_host_name(void)
{
    CHECK_GROUP("sanitize host");
    char host[256] = "", msg[600], out[700];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    if (strlen(host) < 2) {
        printf("# host name shorter than 2 bytes: not replaced by design, nothing to check\n");
        return;
    }
    snprintf(msg, sizeof msg, "build on %s failed", host);
    tel__sanitize(msg, out, sizeof out);
    CHECK("host name removed", strstr(out, host) == NULL);
    CHECK("host name replaced", strstr(out, "<host>") != NULL);
    CHECK("words around it kept", strncmp(out, "build on ", 9) == 0 && strstr(out, " failed") != NULL);
    snprintf(msg, sizeof msg, "GET http://%s:8080/status timed out", host);
    tel__sanitize(msg, out, sizeof out);
    CHECK("host name in a URL removed", strstr(out, host) == NULL);
}

static void test_edges(void)
{
    CHECK_GROUP("sanitize edges");
    char out[64];
    memset(out, 'x', sizeof out);
    tel__sanitize(NULL, out, sizeof out);
    CHECK("NULL input gives an empty string", out[0] == '\0');
    memset(out, 'x', sizeof out);
    tel__sanitize("abc", out, 1);
    CHECK("size 1 gives an empty string", out[0] == '\0');
    tel__sanitize("abc", NULL, 0);
    memset(out, 'x', sizeof out);
    tel__sanitize("abc", out, 0);
    CHECK("size 0 leaves the buffer alone", out[0] == 'x');

    char small[12];
    memset(small, 'x', sizeof small);
    tel__sanitize("a very long message that does not fit", small, sizeof small);
    CHECK("truncated to fit", strlen(small) == sizeof small - 1);
    CHECK("truncated keeps the start", strncmp(small, "a very long", 11) == 0);

    /* "é" (2 bytes) straddles every cut point in turn: the output must be
     * valid UTF-8 and never end inside a character. */
    const char *accents = "\xc3\xa9\xc3\xa9\xc3\xa9\xe2\x9c\x93\xe2\x9c\x93\xf0\x9f\x98\x80";
    int all_valid = 1;
    for (size_t cap = 1; cap <= strlen(accents) + 1; cap++) {
        char buf[32];
        memset(buf, 'x', sizeof buf);
        tel__sanitize(accents, buf, cap);
        if (strlen(buf) >= cap || !valid_utf8(buf) || strncmp(buf, accents, strlen(buf)) != 0)
            all_valid = 0;
    }
    CHECK("cut at every size: valid UTF-8 prefix", all_valid);

    /* Placeholders are not cut in half either. */
    char tiny[8];
    tel__sanitize("at /secret/path", tiny, sizeof tiny);
    CHECK("a placeholder that does not fit is left out", strcmp(tiny, "at ") == 0);

    tel__sanitize("bad \xff\xfe bytes\tand\ncontrols\x01", out, sizeof out);
    CHECK("invalid bytes and controls replaced", strcmp(out, "bad ?? bytes and controls?") == 0);
    CHECK("output is valid UTF-8", valid_utf8(out));
    tel__sanitize("overlong \xc0\xaf and surrogate \xed\xa0\x80", out, sizeof out);
    CHECK("overlong and surrogate sequences replaced", valid_utf8(out) && strstr(out, "\xc0") == NULL &&
                                                           strstr(out, "\xed") == NULL);

    /* A user name of one letter would blank out ordinary words. */
    setenv("USER", "a", 1);
    tel__sanitize("a cat", out, sizeof out);
    CHECK("one-letter user name is not replaced", strcmp(out, "a cat") == 0);
    setenv("USER", "zelda", 1);
    tel__sanitize("zeldas and zelda_x", out, sizeof out);
    CHECK("user name matched as a word, not inside one", strncmp(out, "zeldas and ", 11) == 0 &&
                                                               strstr(out, "<user>_x") != NULL);
}

int main(void)
{
    setenv("HOME", "/home/zelda", 1);
    setenv("USER", "zelda", 1);
    setenv("LOGNAME", "zelda", 1);
    test_corpus();
    test_host_name();
    test_edges();
    return check_exit();
}
