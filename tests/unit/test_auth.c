/*
 * test_auth.c - password files, ACL files, ApsaraMQ signatures and GID client IDs, CONNECT
 * decisions and reload (auth/).
 *
 * The "$7$" and "$6$" entries below were written by Debian's mosquitto_passwd 2.0.11; the
 * ApsaraMQ signatures were computed with
 *   printf '%s' CLIENT_ID | openssl dgst -sha1 -hmac SECRET -binary | base64
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "auth/internal.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "mqtt/rc.h"

/* mosquitto_passwd -c -b pw alice secret1; mosquitto_passwd -b pw bob 'p@ss wörd';
 * mosquitto_passwd -H sha512 -b pw carol old-style */
#define ALICE                                                                                      \
    "alice:$7$101$jrJd7dAqbKZmjtFB$0FKMCXjbtEbMvI7tMbRFDdyMrbJ9tqim3wRDni7k3WIXVvnfVWSV"           \
    "B14JZIMBIn+XysxuWPszguiN+uusmdDQOg=="
#define BOB                                                                                        \
    "bob:$7$101$Uz8CFCPS5SRtt9AW$kqDKq3uzCtpX4peVUiGwScAzIBSg1QQ2zVJgHllG/PNWpyZDUVzihl"           \
    "sfmA2FWapOlvin5nydZQxp1Y7YpoKvfA=="
#define CAROL                                                                                      \
    "carol:$6$pV0ZLJvc/6LfWhh1$1t+G54+AN+2jba6e2mcEyEc0BAdRS/YjYUl0UyYHZoaXWigYu48eR"              \
    "BFFxiz2fjQdJtv3Mzb7RnqNkTvQnNqU3w=="

static const char *
hash_of(const char *line)
{
    return strchr(line, ':') + 1;
}

/* ---- base64 ---- */

static void
base64_round_trips(void **state)
{
    static const struct {
        const char *raw, *enc;
    } v[] = {{"", ""},
             {"f", "Zg=="},
             {"fo", "Zm8="},
             {"foo", "Zm9v"},
             {"foob", "Zm9vYg=="},
             {"fooba", "Zm9vYmE="},
             {"foobar", "Zm9vYmFy"}};
    char out[32];
    uint8_t raw[32];

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        b64_encode((const uint8_t *)v[i].raw, strlen(v[i].raw), out);
        assert_string_equal(out, v[i].enc);
        int n = b64_decode(v[i].enc, strlen(v[i].enc), raw, sizeof(raw));
        assert_int_equal(n, (int)strlen(v[i].raw));
        assert_memory_equal(raw, v[i].raw, (size_t)n);
    }
    assert_int_equal(b64_decode("Zm9", 3, raw, sizeof(raw)), -1);  /* not a multiple of 4 */
    assert_int_equal(b64_decode("Zm=v", 4, raw, sizeof(raw)), -1); /* data after '=' */
    assert_int_equal(b64_decode("Zm9*", 4, raw, sizeof(raw)), -1); /* not the alphabet */
    assert_int_equal(b64_decode("Zm9vYmFy", 8, raw, 5), -1);       /* does not fit */
}

/* ---- password files ---- */

static void
mosquitto_pbkdf2_entries_verify(void **state)
{
    assert_true(auth_passwd_verify(hash_of(ALICE), SLICE("secret1")));
    assert_false(auth_passwd_verify(hash_of(ALICE), SLICE("secret2")));
    assert_false(auth_passwd_verify(hash_of(ALICE), SLICE("")));
    assert_true(auth_passwd_verify(hash_of(BOB), slice_cstr("p@ss w\xc3\xb6rd")));
    assert_false(auth_passwd_verify(hash_of(BOB), SLICE("p@ss word")));
}

static void
mosquitto_sha512_entries_verify(void **state)
{
    assert_true(auth_passwd_verify(hash_of(CAROL), SLICE("old-style")));
    assert_false(auth_passwd_verify(hash_of(CAROL), SLICE("old-styl")));
}

static void
malformed_entries_never_verify(void **state)
{
    const char *bad[] = {
        "",
        "plain",
        "$5$abc$def",
        "$7$$jrJd7dAqbKZmjtFB$AAAA",
        "$7$0$jrJd7dAqbKZmjtFB$AAAA",
        "$7$-1$jrJd7dAqbKZmjtFB$AAAA",
        "$7$101$jrJd7dAqbKZmjtFB$AAAA", /* hash not 64 bytes */
        "$7$101$!!!!$AAAA",
        "$6$pV0ZLJvc/6LfWhh1",
        "$7$101$a$b$c",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(auth_passwd_verify(bad[i], SLICE("")));
}

static void
new_hashes_verify_and_differ(void **state)
{
    char a[AUTH_HASH_MAX], b[AUTH_HASH_MAX];

    assert_int_equal(auth_passwd_hash(SLICE("s3cret"), a, sizeof(a)), 0);
    assert_int_equal(auth_passwd_hash(SLICE("s3cret"), b, sizeof(b)), 0);
    assert_string_not_equal(a, b); /* fresh salt each time */
    assert_int_equal(strncmp(a, "$7$101$", 7), 0);
    assert_true(auth_passwd_verify(a, SLICE("s3cret")));
    assert_false(auth_passwd_verify(a, SLICE("s3cre")));
    char small[20];
    assert_int_not_equal(auth_passwd_hash(SLICE("x"), small, sizeof(small)), 0);
}

static void
password_file_lines(void **state)
{
    const char *text = "# a comment\n"
                       "\n" ALICE "\n"
                       "no colon here\n"
                       "mallory:plaintext\n" /* not hashed: skipped */
                       "  " BOB "  \r\n"     /* blanks around both parts */
        CAROL;                               /* no final newline */
    struct passwd_file pf;
    char err[128];

    assert_int_equal(passwd_parse("pw", text, strlen(text), &pf, err, sizeof(err)), 0);
    assert_int_equal(passwd_check(&pf, SLICE("alice"), SLICE("secret1")), 0);
    assert_int_equal(passwd_check(&pf, SLICE("alice"), SLICE("nope")), -1);
    assert_int_equal(passwd_check(&pf, slice_cstr("bob"), slice_cstr("p@ss w\xc3\xb6rd")), 0);
    assert_int_equal(passwd_check(&pf, SLICE("carol"), SLICE("old-style")), 0);
    assert_int_equal(passwd_check(&pf, SLICE("mallory"), SLICE("plaintext")), -1);
    assert_int_equal(passwd_check(&pf, SLICE("nobody"), SLICE("secret1")), -1);
    assert_int_equal(passwd_check(&pf, SLICE("Alice"), SLICE("secret1")), -1); /* exact */
    passwd_fini(&pf);
}

/* ---- ACL ---- */

static const char acl_text[] = "# anonymous clients\n"
                               "topic read public/#\n"
                               "p2p target GID_demo@@@*\n"
                               "\n"
                               "user alice\n"
                               "topic readwrite sensors/#\n"
                               "topic deny sensors/secret/#\n"
                               "topic write cmd\n"
                               "topic read $SYS/#\n"
                               "p2p same-group\n"
                               "\n"
                               "user bob\n"
                               "topic sensors/+/temp\n" /* no access word: read and write */
                               "\n"
                               "pattern readwrite devices/%c/#\n"
                               "pattern read users/%u/inbox\n"
                               "pattern deny devices/%c/locked\n";

struct acl_fixture {
    struct acl acl;
    struct acl_view v;
};

static void
view(struct acl_fixture *f, const char *user, const char *client_id)
{
    struct slice id = slice_cstr(client_id), group = {NULL, 0};

    acl_view_fini(&f->v);
    if (!apsara_gid_parse(id, &group))
        group.len = 0;
    acl_compile(&f->acl, user, id, group, &f->v);
}

static int
acl_setup(void **state)
{
    struct acl_fixture *f = xcalloc(1, sizeof(*f));
    char err[256];

    assert_int_equal(acl_parse("acl", acl_text, strlen(acl_text), &f->acl, err, sizeof(err)), 0);
    *state = f;
    return 0;
}

static int
acl_teardown(void **state)
{
    struct acl_fixture *f = *state;

    acl_view_fini(&f->v);
    acl_fini(&f->acl);
    free(f);
    return 0;
}

#define ALLOWED(f, access, topic) (acl_check_topic(&(f)->v, (access), SLICE(topic)) == ACL_ALLOW)

static void
user_rules_deny_first(void **state)
{
    struct acl_fixture *f = *state;

    view(f, "alice", "alice-1");
    assert_true(ALLOWED(f, ACL_READ, "sensors/a/temp"));
    assert_true(ALLOWED(f, ACL_WRITE, "sensors/a/temp"));
    /* The deny line comes after the readwrite line in the file but is tried first. */
    assert_int_equal(acl_check_topic(&f->v, ACL_READ, SLICE("sensors/secret/x")), ACL_DENIED);
    assert_true(ALLOWED(f, ACL_WRITE, "cmd"));
    assert_false(ALLOWED(f, ACL_READ, "cmd"));         /* write only */
    assert_false(ALLOWED(f, ACL_READ, "public/news")); /* anonymous rules are not hers */
    assert_false(ALLOWED(f, ACL_READ, "other"));
    assert_true(ALLOWED(f, ACL_READ, "$SYS/broker/uptime"));

    view(f, "bob", "bob-1");
    assert_true(ALLOWED(f, ACL_READ | ACL_WRITE, "sensors/x/temp"));
    assert_true(ALLOWED(f, ACL_WRITE, "sensors/x/temp"));
    assert_false(ALLOWED(f, ACL_READ, "sensors/x/hum"));
}

static void
anonymous_rules_apply_without_username(void **state)
{
    struct acl_fixture *f = *state;

    view(f, NULL, "anon-1");
    assert_true(ALLOWED(f, ACL_READ, "public/news"));
    assert_false(ALLOWED(f, ACL_WRITE, "public/news"));
    assert_false(ALLOWED(f, ACL_READ, "sensors/a/temp"));
    /* '#' never reaches '$' topics [MQTT-4.7.2-1] */
    assert_false(ALLOWED(f, ACL_READ, "$SYS/broker/uptime"));
    /* Patterns apply to everyone; %u patterns need a username. */
    assert_true(ALLOWED(f, ACL_WRITE, "devices/anon-1/state"));
    assert_false(ALLOWED(f, ACL_READ, "users//inbox"));
}

static void
patterns_expand_client_id_and_username(void **state)
{
    struct acl_fixture *f = *state;

    view(f, "carol", "dev-7"); /* no section of her own: patterns only */
    assert_true(ALLOWED(f, ACL_WRITE, "devices/dev-7/state"));
    assert_true(ALLOWED(f, ACL_READ, "devices/dev-7/cfg/x"));
    assert_false(ALLOWED(f, ACL_READ, "devices/dev-8/state"));
    assert_true(ALLOWED(f, ACL_READ, "users/carol/inbox"));
    assert_false(ALLOWED(f, ACL_WRITE, "users/carol/inbox"));
    assert_false(ALLOWED(f, ACL_READ, "users/dave/inbox"));
    /* A pattern deny only overrides other patterns, which it precedes. */
    assert_int_equal(acl_check_topic(&f->v, ACL_WRITE, SLICE("devices/dev-7/locked")), ACL_DENIED);
}

static void
wildcards_in_identity_disable_patterns(void **state)
{
    struct acl_fixture *f = *state;

    /* "devices/+/#" would be every device's: Mosquitto's rule, patterns are not used. */
    view(f, "carol", "+");
    assert_false(ALLOWED(f, ACL_READ, "devices/x/state"));
    view(f, "#", "dev-7");
    assert_false(ALLOWED(f, ACL_READ, "devices/dev-7/state"));
    assert_false(ALLOWED(f, ACL_READ, "users/#/inbox"));
}

static void
subscribe_filters(void **state)
{
    struct acl_fixture *f = *state;

    view(f, "alice", "alice-1");
    assert_true(acl_check_filter(&f->v, SLICE("sensors/#")));
    assert_true(acl_check_filter(&f->v, SLICE("sensors/+/temp")));
    /* Reaches allowed topics: granted, the rest is filtered per message. */
    assert_true(acl_check_filter(&f->v, SLICE("#")));
    assert_true(acl_check_filter(&f->v, SLICE("+/a/temp")));
    /* Wholly denied, or reaching no readable topic: refused. */
    assert_false(acl_check_filter(&f->v, SLICE("sensors/secret/#")));
    assert_false(acl_check_filter(&f->v, SLICE("sensors/secret/a")));
    assert_false(acl_check_filter(&f->v, SLICE("cmd")));
    assert_false(acl_check_filter(&f->v, SLICE("public/#")));
    assert_true(acl_check_filter(&f->v, SLICE("$SYS/#")));
    view(f, NULL, "anon");
    assert_false(acl_check_filter(&f->v, SLICE("$SYS/#")));
    assert_true(acl_check_filter(&f->v, SLICE("+/news")));
}

static void
filter_algebra(void **state)
{
    assert_true(acl_filter_covers(SLICE("#"), SLICE("a/b")));
    assert_true(acl_filter_covers(SLICE("a/#"), SLICE("a")));
    assert_true(acl_filter_covers(SLICE("a/#"), SLICE("a/+/c")));
    assert_true(acl_filter_covers(SLICE("a/+"), SLICE("a/b")));
    assert_true(acl_filter_covers(SLICE("+/+"), SLICE("+/b")));
    assert_false(acl_filter_covers(SLICE("a/+"), SLICE("a/#")));
    assert_false(acl_filter_covers(SLICE("a/b"), SLICE("a/+")));
    assert_false(acl_filter_covers(SLICE("a"), SLICE("a/b")));
    assert_false(acl_filter_covers(SLICE("a/b"), SLICE("a")));
    assert_false(acl_filter_covers(SLICE("#"), SLICE("$SYS/x")));
    assert_false(acl_filter_covers(SLICE("+/x"), SLICE("$SYS/x")));
    assert_true(acl_filter_covers(SLICE("$SYS/#"), SLICE("$SYS/x")));

    assert_true(acl_filter_intersects(SLICE("a/+"), SLICE("+/b")));
    assert_true(acl_filter_intersects(SLICE("a/#"), SLICE("a")));
    assert_true(acl_filter_intersects(SLICE("#"), SLICE("x/y/z")));
    assert_true(acl_filter_intersects(SLICE("a//b"), SLICE("a/+/b")));
    assert_false(acl_filter_intersects(SLICE("a/b"), SLICE("a/c")));
    assert_false(acl_filter_intersects(SLICE("a/+"), SLICE("a")));
    assert_false(acl_filter_intersects(SLICE("a/+/c"), SLICE("a/b")));
    assert_false(acl_filter_intersects(SLICE("#"), SLICE("$SYS/#")));
    assert_false(acl_filter_intersects(SLICE("$SYS/a"), SLICE("+/a")));
    assert_true(acl_filter_intersects(SLICE("$SYS/+"), SLICE("$SYS/#")));

    assert_true(acl_glob_match(SLICE("GID_a@@@*"), SLICE("GID_a@@@dev")));
    assert_true(acl_glob_match(SLICE("*"), SLICE("")));
    assert_true(acl_glob_match(SLICE("a*b*c"), SLICE("aXXbYYc")));
    assert_false(acl_glob_match(SLICE("a*b*c"), SLICE("aXXbYY")));
    assert_false(acl_glob_match(SLICE("abc"), SLICE("abcd")));
}

static void
p2p_target_rules(void **state)
{
    struct acl_fixture *f = *state;
    struct slice none = {NULL, 0};

    /* alice: "p2p same-group" */
    view(f, "alice", "GID_demo@@@alice");
    assert_true(f->v.p2p_restricted);
    assert_true(acl_check_target(&f->v, SLICE("GID_demo"), SLICE("GID_demo@@@dev1")));
    assert_false(acl_check_target(&f->v, SLICE("GID_demo"), SLICE("GID_other@@@dev1")));
    assert_false(acl_check_target(&f->v, SLICE("GID_demo"), SLICE("GID_demo@@@")));
    assert_false(acl_check_target(&f->v, SLICE("GID_demo"), SLICE("GID_demoX@@@d")));
    /* Not a GID client: same-group matches nobody, and she stays restricted. */
    view(f, "alice", "alice-1");
    assert_false(acl_check_target(&f->v, none, SLICE("GID_demo@@@dev1")));
    /* anonymous: "p2p target GID_demo@@@*" */
    view(f, NULL, "x");
    assert_true(acl_check_target(&f->v, none, SLICE("GID_demo@@@dev9")));
    assert_false(acl_check_target(&f->v, none, SLICE("GID_else@@@dev9")));
    /* bob: no p2p rule at all, so no restriction. */
    view(f, "bob", "bob-1");
    assert_false(f->v.p2p_restricted);
    assert_true(acl_check_target(&f->v, none, SLICE("anyone")));
}

static void
p2p_patterns_for_everyone(void **state)
{
    const char *text = "p2p_pattern target %c-peer\n"
                       "p2p_pattern target GID_%u@@@*\n"
                       "user admin\n"
                       "p2p target *\n";
    struct acl acl;
    struct acl_view v;
    char err[256];

    assert_int_equal(acl_parse("acl", text, strlen(text), &acl, err, sizeof(err)), 0);
    acl_compile(&acl, "team7", SLICE("me"), (struct slice){NULL, 0}, &v);
    assert_true(acl_check_target(&v, (struct slice){NULL, 0}, SLICE("me-peer")));
    assert_true(acl_check_target(&v, (struct slice){NULL, 0}, SLICE("GID_team7@@@x")));
    assert_false(acl_check_target(&v, (struct slice){NULL, 0}, SLICE("you-peer")));
    acl_view_fini(&v);
    acl_compile(&acl, "admin", SLICE("root"), (struct slice){NULL, 0}, &v);
    assert_true(acl_check_target(&v, (struct slice){NULL, 0}, SLICE("whoever")));
    acl_view_fini(&v);
    acl_fini(&acl);
}

static void
acl_parse_errors_name_the_line(void **state)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"topic\n", "acl:1: topic: missing topic"},
        {"\n\ntopic sometimes a/b\n", "acl:3: topic: 'sometimes' is not read, write, readwrite "
                                      "or deny"},
        {"topic read a/#/b\n", "acl:1: topic: 'a/#/b' is not a valid topic filter"},
        {"pattern write a+\n", "acl:1: pattern: 'a+' is not a valid topic filter"},
        {"user\n", "acl:1: user: missing username"},
        {"user x\np2p\n", "acl:2: p2p: expected 'same-group' or 'target PATTERN'"},
        {"p2p same-group extra\n", "acl:1: p2p: expected 'same-group' or 'target PATTERN'"},
        {"topics read a\n", "acl:1: 'topics' is not topic, pattern, user, p2p or p2p_pattern"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct acl acl;
        char err[256] = "";
        assert_int_equal(
            acl_parse("acl", cases[i].text, strlen(cases[i].text), &acl, err, sizeof(err)), -1);
        assert_string_equal(err, cases[i].msg);
        acl_fini(&acl);
    }
}

static void
acl_topic_may_hold_blanks(void **state)
{
    const char *text = "  topic read   a b/c  \n\tuser  two words \ntopic write x\n";
    struct acl acl;
    struct acl_view v;
    char err[256];

    assert_int_equal(acl_parse("acl", text, strlen(text), &acl, err, sizeof(err)), 0);
    acl_compile(&acl, NULL, SLICE("c"), (struct slice){NULL, 0}, &v);
    assert_int_equal(acl_check_topic(&v, ACL_READ, SLICE("a b/c")), ACL_ALLOW);
    acl_view_fini(&v);
    acl_compile(&acl, "two words", SLICE("c"), (struct slice){NULL, 0}, &v);
    assert_int_equal(acl_check_topic(&v, ACL_WRITE, SLICE("x")), ACL_ALLOW);
    acl_view_fini(&v);
    acl_fini(&acl);
}

/* ---- ApsaraMQ ---- */

static void
signature_matches_openssl(void **state)
{
    char sig[APSARA_SIG_LEN + 1];

    apsara_sign(SLICE("SecretKeyExample123"), SLICE("GID_demo@@@DEVICE_001"), sig);
    assert_string_equal(sig, "TvUFX748x0Dixhxh8n+BbqdGWW4=");
    apsara_sign(SLICE("dev-secret-002"), SLICE("GID_demo@@@DEVICE_002"), sig);
    assert_string_equal(sig, "WeO6HmyalcpvplubV5Ip6uW1f9g=");
    apsara_sign(SLICE("k"), SLICE(""), sig);
    assert_string_equal(sig, "OoSiGO5mZSCbtw6EUl3YN2RaGWU=");
}

static void
apsara_usernames(void **state)
{
    struct slice key, inst;

    assert_int_equal(apsara_username(SLICE("Signature|AK1|mqtt-cn-x"), &key, &inst),
                     APSARA_SIGNATURE);
    assert_true(slice_eq(key, SLICE("AK1")) && slice_eq(inst, SLICE("mqtt-cn-x")));
    assert_int_equal(apsara_username(SLICE("DeviceCredential|DAK|i"), &key, &inst), APSARA_DEVICE);
    assert_true(slice_eq(key, SLICE("DAK")));
    assert_int_equal(apsara_username(SLICE("Token|AK|i"), &key, &inst), APSARA_NONE);
    assert_int_equal(apsara_username(SLICE("Signature|AK"), &key, &inst), APSARA_NONE);
    assert_int_equal(apsara_username(SLICE("Signature||i"), &key, &inst), APSARA_NONE);
    assert_int_equal(apsara_username(SLICE("Signature|AK|"), &key, &inst), APSARA_NONE);
    assert_int_equal(apsara_username(SLICE("Signature|AK|i|j"), &key, &inst), APSARA_NONE);
    assert_int_equal(apsara_username(SLICE("alice"), &key, &inst), APSARA_NONE);
}

static void
apsara_keys_verify(void **state)
{
    const char *keys_text = "# AccessKeyId SecretKey [InstanceId]\n"
                            "AK1 SecretKeyExample123\n"
                            "AK2\tSecretKeyExample123\tmqtt-cn-only\n";
    const char *dev_text = "DAK2 dev-secret-002 GID_demo@@@DEVICE_002\n";
    struct apsara_keys keys, devs;
    char err[256];
    struct slice cid = SLICE("GID_demo@@@DEVICE_001");
    struct slice pw = SLICE("TvUFX748x0Dixhxh8n+BbqdGWW4=");

    assert_int_equal(
        apsara_parse("k", keys_text, strlen(keys_text), false, &keys, err, sizeof(err)), 0);
    assert_int_equal(apsara_parse("d", dev_text, strlen(dev_text), true, &devs, err, sizeof(err)),
                     0);
    assert_int_equal(apsara_verify(&keys, APSARA_SIGNATURE, SLICE("AK1"), SLICE("any"), cid, pw),
                     0);
    assert_int_equal(apsara_verify(&keys, APSARA_SIGNATURE, SLICE("AK1"), SLICE("any"),
                                   SLICE("GID_demo@@@DEVICE_009"), pw),
                     -1);
    assert_int_equal(apsara_verify(&keys, APSARA_SIGNATURE, SLICE("AK1"), SLICE("any"), cid,
                                   SLICE("TvUFX748x0Dixhxh8n+BbqdGWW4")),
                     -1);
    assert_int_equal(apsara_verify(&keys, APSARA_SIGNATURE, SLICE("AK9"), SLICE("any"), cid, pw),
                     -1);
    /* A key bound to an instance works for that instance only. */
    assert_int_equal(
        apsara_verify(&keys, APSARA_SIGNATURE, SLICE("AK2"), SLICE("mqtt-cn-only"), cid, pw), 0);
    assert_int_equal(apsara_verify(&keys, APSARA_SIGNATURE, SLICE("AK2"), SLICE("other"), cid, pw),
                     -1);
    /* A device credential is bound to its client ID. */
    struct slice dcid = SLICE("GID_demo@@@DEVICE_002");
    struct slice dpw = SLICE("WeO6HmyalcpvplubV5Ip6uW1f9g=");
    assert_int_equal(apsara_verify(&devs, APSARA_DEVICE, SLICE("DAK2"), SLICE("i"), dcid, dpw), 0);
    char other[APSARA_SIG_LEN + 1];
    apsara_sign(SLICE("dev-secret-002"), cid, other);
    assert_int_equal(
        apsara_verify(&devs, APSARA_DEVICE, SLICE("DAK2"), SLICE("i"), cid, slice_cstr(other)), -1);
    apsara_fini(&keys);
    apsara_fini(&devs);
}

static void
apsara_file_errors(void **state)
{
    struct apsara_keys k;
    char err[256];

    assert_int_equal(apsara_parse("k", "AK1\n", 4, false, &k, err, sizeof(err)), -1);
    assert_string_equal(err, "k:1: expected AccessKeyId SecretKey [InstanceId]");
    apsara_fini(&k);
    assert_int_equal(apsara_parse("k", "\nA s\nA t\n", 9, false, &k, err, sizeof(err)), -1);
    assert_string_equal(err, "k:3: 'A' is given twice");
    apsara_fini(&k);
    assert_int_equal(apsara_parse("d", "D s\n", 4, true, &k, err, sizeof(err)), -1);
    assert_string_equal(err, "d:1: expected DeviceAccessKeyId DeviceSecret ClientId "
                             "[InstanceId]");
    apsara_fini(&k);
}

static void
gid_client_ids(void **state)
{
    struct slice g;

    assert_true(apsara_gid_parse(SLICE("GID_demo@@@DEVICE_001"), &g));
    assert_true(slice_eq(g, SLICE("GID_demo")));
    assert_true(apsara_gid_parse(SLICE("GID-a_b-c@@@d"), &g));
    assert_false(apsara_gid_parse(SLICE("GID_ab@@@dev"), &g)); /* group of 6 characters */
    assert_false(apsara_gid_parse(SLICE("gid_demo@@@dev"), &g));
    assert_false(apsara_gid_parse(SLICE("GID_demo@@@"), &g)); /* no device */
    assert_false(apsara_gid_parse(SLICE("GID_demo"), &g));
    assert_false(apsara_gid_parse(SLICE("GID_de.mo@@@dev"), &g));
    assert_false(apsara_gid_parse(SLICE("GID_demo@@@de/v"), &g));
    assert_false(apsara_gid_parse(SLICE("GID_demo@@@de v"), &g));
    char longid[80];
    snprintf(longid, sizeof(longid), "GID_demo@@@%060d", 0); /* 71 characters */
    assert_false(apsara_gid_parse(slice_cstr(longid), &g));
    char longgroup[80];
    snprintf(longgroup, sizeof(longgroup), "GID_%061d", 0); /* 65 characters */
    assert_false(apsara_group_valid(slice_cstr(longgroup)));
    longgroup[64] = '\0';
    assert_true(apsara_group_valid(slice_cstr(longgroup)));
}

/* ---- the whole: files, CONNECT, reload ---- */

struct world {
    char dir[64];
    struct config cfg;
    struct auth *auth;
    struct config_listener loopback, open, certs;
};

static char *
write_file(struct world *w, const char *name, const char *text)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/%s", w->dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return xstrdup(path);
}

static int
world_setup(void **state)
{
    struct world *w = xcalloc(1, sizeof(*w));

    snprintf(w->dir, sizeof(w->dir), "/tmp/petrel-test-auth-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    config_defaults(&w->cfg);
    w->loopback = (struct config_listener){.bind_address = "127.0.0.1"};
    w->open = (struct config_listener){.bind_address = NULL};
    w->certs = (struct config_listener){.bind_address = "0.0.0.0", .require_certificate = true};
    *state = w;
    return 0;
}

static void
unlink_in(struct world *w, const char *name)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/%s", w->dir, name);
    unlink(path);
}

static int
world_teardown(void **state)
{
    struct world *w = *state;

    auth_free(w->auth);
    config_fini(&w->cfg);
    const char *names[] = {"pw", "acl", "keys", "devs"};
    for (size_t i = 0; i < 4; i++)
        unlink_in(w, names[i]);
    rmdir(w->dir);
    free(w);
    return 0;
}

static int
try_connect(struct world *w, const struct config_listener *li, const char *client_id,
            const char *user, const char *password, const char *peer)
{
    struct auth_request rq = {
        .client_id = slice_cstr(client_id),
        .has_username = user != NULL,
        .username = slice_cstr(user),
        .has_password = password != NULL,
        .password = slice_cstr(password),
        .listener = li,
        .peer = peer ? peer : "127.0.0.1:5000",
        .now = 1000,
    };
    struct auth_identity *id = NULL;
    const char *reason = NULL;
    int rc = auth_connect(w->auth, 0, &rq, &id, &reason);

    assert_non_null(reason);
    if (rc == 0)
        assert_non_null(id);
    else
        assert_null(id);
    auth_identity_free(id);
    return rc;
}

static void
no_files_anonymous_on_loopback_only(void **state)
{
    struct world *w = *state;
    char err[256];

    assert_int_equal(auth_new(&w->cfg, 1, &w->auth, err, sizeof(err)), 0);
    assert_int_equal(try_connect(w, &w->loopback, "c1", NULL, NULL, NULL), 0);
    assert_int_equal(try_connect(w, &w->open, "c1", NULL, NULL, NULL), MQTT_RC_NOT_AUTHORIZED);
    /* A username nothing can check does not make a client less anonymous. */
    assert_int_equal(try_connect(w, &w->open, "c1", "u", "p", NULL), MQTT_RC_NOT_AUTHORIZED);
    assert_int_equal(try_connect(w, &w->certs, "c1", NULL, NULL, NULL), 0);
    assert_false(auth_has_acl(w->auth, 0));
    auth_free(w->auth);
    w->auth = NULL;

    w->cfg.allow_anonymous_set = true; /* "allow_anonymous true" in the file */
    w->cfg.allow_anonymous = true;
    assert_int_equal(auth_new(&w->cfg, 1, &w->auth, err, sizeof(err)), 0);
    assert_int_equal(try_connect(w, &w->open, "c1", NULL, NULL, NULL), 0);
}

static void
password_file_logins(void **state)
{
    struct world *w = *state;
    char err[256];

    w->cfg.password_file = write_file(w, "pw", ALICE "\n" CAROL "\n");
    assert_int_equal(auth_new(&w->cfg, 1, &w->auth, err, sizeof(err)), 0);
    assert_int_equal(try_connect(w, &w->open, "c1", "alice", "secret1", NULL), 0);
    assert_int_equal(try_connect(w, &w->open, "c1", "carol", "old-style", NULL), 0);
    assert_int_equal(try_connect(w, &w->open, "c1", "alice", "wrong", NULL),
                     MQTT_RC_BAD_CREDENTIALS);
    assert_int_equal(try_connect(w, &w->open, "c1", "alice", NULL, NULL), MQTT_RC_BAD_CREDENTIALS);
    assert_int_equal(try_connect(w, &w->open, "c1", "zed", "secret1", NULL),
                     MQTT_RC_BAD_CREDENTIALS);
    /* With a password file, anonymous clients are refused unless allowed, even on loopback
     * (Mosquitto 2's default). */
    assert_int_equal(try_connect(w, &w->loopback, "c1", NULL, NULL, NULL), MQTT_RC_NOT_AUTHORIZED);
}

static void
failed_logins_are_slowed_down(void **state)
{
    struct world *w = *state;
    char err[256];

    w->cfg.password_file = write_file(w, "pw", ALICE "\n");
    w->cfg.auth_fail_limit = 3;
    assert_int_equal(auth_new(&w->cfg, 1, &w->auth, err, sizeof(err)), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(try_connect(w, &w->open, "c", "alice", "x", "10.0.0.1:1"),
                         MQTT_RC_BAD_CREDENTIALS);
    /* Even the right password waits now; other addresses do not. */
    assert_int_equal(try_connect(w, &w->open, "c", "alice", "secret1", "10.0.0.1:2"),
                     MQTT_RC_CONNECTION_RATE_EXCEEDED);
    assert_int_equal(try_connect(w, &w->open, "c", "alice", "secret1", "10.0.0.2:1"), 0);
    assert_int_equal(try_connect(w, &w->open, "c", "alice", "secret1", "[::1]:7"), 0);
}

static void
apsara_logins(void **state)
{
    struct world *w = *state;
    char err[256];

    w->cfg.access_key_file = write_file(w, "keys", "AK1 SecretKeyExample123 mqtt-cn-1\n");
    w->cfg.device_credential_file =
        write_file(w, "devs", "DAK2 dev-secret-002 GID_demo@@@DEVICE_002\n");
    w->cfg.require_gid_clientid = true;
    w->cfg.gid_groups = xcalloc(1, sizeof(char *));
    w->cfg.gid_groups[0] = xstrdup("GID_demo");
    w->cfg.n_gid_groups = 1;
    assert_int_equal(auth_new(&w->cfg, 1, &w->auth, err, sizeof(err)), 0);
    assert_int_equal(try_connect(w, &w->open, "GID_demo@@@DEVICE_001", "Signature|AK1|mqtt-cn-1",
                                 "TvUFX748x0Dixhxh8n+BbqdGWW4=", NULL),
                     0);
    assert_int_equal(try_connect(w, &w->open, "GID_demo@@@DEVICE_001", "Signature|AK1|mqtt-cn-2",
                                 "TvUFX748x0Dixhxh8n+BbqdGWW4=", NULL),
                     MQTT_RC_BAD_CREDENTIALS);
    assert_int_equal(try_connect(w, &w->open, "GID_demo@@@DEVICE_002", "DeviceCredential|DAK2|i",
                                 "WeO6HmyalcpvplubV5Ip6uW1f9g=", NULL),
                     0);
    assert_int_equal(try_connect(w, &w->open, "not-gid", "Signature|AK1|mqtt-cn-1", "x", NULL),
                     MQTT_RC_CLIENT_ID_INVALID);
    assert_int_equal(
        try_connect(w, &w->open, "GID_other@@@DEVICE_001", "Signature|AK1|mqtt-cn-1", "x", NULL),
        MQTT_RC_NOT_AUTHORIZED);
}

static void
acl_through_identities_and_reload(void **state)
{
    struct world *w = *state;
    char err[256];

    w->cfg.allow_anonymous_set = true;
    w->cfg.allow_anonymous = true;
    w->cfg.acl_file = write_file(w, "acl", "topic read a/#\ntopic write a/in\n");
    assert_int_equal(auth_new(&w->cfg, 2, &w->auth, err, sizeof(err)), 0);
    struct auth_request rq = {.client_id = SLICE("c"), .listener = &w->open, .peer = "1.1.1.1:1"};
    struct auth_identity *id;
    const char *reason;
    assert_int_equal(auth_connect(w->auth, 1, &rq, &id, &reason), 0);
    assert_true(auth_has_acl(w->auth, 1));
    assert_true(auth_may_receive(w->auth, 1, id, SLICE("a/x")));
    assert_true(auth_may_receive(w->auth, 1, id, SLICE("a/x"))); /* from the cache */
    assert_false(auth_may_receive(w->auth, 1, id, SLICE("b/x")));
    assert_true(auth_may_publish(w->auth, 1, id, SLICE("a/in")));
    assert_false(auth_may_publish(w->auth, 1, id, SLICE("a/x")));
    assert_true(auth_may_subscribe(w->auth, 1, id, SLICE("#")));
    assert_false(auth_may_subscribe(w->auth, 1, id, SLICE("b/#")));
    /* P2P: write on the parent or on the whole topic. */
    assert_false(auth_may_send_p2p(w->auth, 1, id, SLICE("a/p2p/x"), SLICE("a"), SLICE("x")));

    /* A reload swaps the rules under the identity, which recompiles on its next check. */
    free(write_file(w, "acl", "topic read b/#\ntopic write a\ntopic deny a/p2p/boss\n"));
    assert_int_equal(auth_reload(w->auth, err, sizeof(err)), 0);
    assert_false(auth_may_receive(w->auth, 1, id, SLICE("a/x")));
    assert_true(auth_may_receive(w->auth, 1, id, SLICE("b/x")));
    assert_true(auth_may_send_p2p(w->auth, 1, id, SLICE("a/p2p/x"), SLICE("a"), SLICE("x")));
    assert_false(auth_may_send_p2p(w->auth, 1, id, SLICE("a/p2p/boss"), SLICE("a"), SLICE("boss")));

    /* A reload that fails keeps the rules in force. */
    free(write_file(w, "acl", "topic sideways b\n"));
    assert_int_equal(auth_reload(w->auth, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "acl_file "));
    assert_non_null(strstr(err, ":1: topic:"));
    assert_true(auth_may_receive(w->auth, 1, id, SLICE("b/x")));
    auth_identity_free(id);
}

static void
missing_files_fail_with_the_key(void **state)
{
    struct world *w = *state;
    char err[256];

    w->cfg.password_file = xstrdup("/nonexistent/pw");
    assert_int_equal(auth_new(&w->cfg, 1, &w->auth, err, sizeof(err)), -1);
    assert_null(w->auth);
    assert_string_equal(err, "password_file /nonexistent/pw: cannot open: No such file or "
                             "directory");
}

/* ---- configuration keys ---- */

static void
auth_config_keys(void **state)
{
    const char *text = "password_file /etc/petrel/pw file\n"
                       "acl_file /etc/petrel/acl\n"
                       "access_key_file keys\n"
                       "device_credential_file devs\n"
                       "require_gid_clientid true\n"
                       "allowed_gid_group GID_demo\n"
                       "allowed_gid_group GID-two\n"
                       "allowed_gid_group GID_demo\n"
                       "auth_fail_limit 4\n"
                       "auth_fail_max_delay 30\n"
                       "allow_anonymous false\n";
    struct config c;
    char err[256];

    config_defaults(&c);
    assert_false(c.allow_anonymous_set);
    assert_int_equal(c.auth_fail_limit, 10);
    assert_int_equal(config_load_buffer("p.conf", text, strlen(text), &c, err, sizeof(err), NULL),
                     0);
    assert_string_equal(c.password_file, "/etc/petrel/pw file");
    assert_string_equal(c.acl_file, "/etc/petrel/acl");
    assert_string_equal(c.access_key_file, "keys");
    assert_string_equal(c.device_credential_file, "devs");
    assert_true(c.require_gid_clientid);
    assert_int_equal(c.n_gid_groups, 2);
    assert_int_equal(c.auth_fail_limit, 4);
    assert_int_equal(c.auth_fail_max_delay, 30);
    assert_true(c.allow_anonymous_set);
    assert_false(c.allow_anonymous);
    config_fini(&c);

    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"acl_file a\nacl_file b\n", "p.conf:2: acl_file: already set to 'a'; Petrel has one for "
                                     "all listeners"},
        {"password_file\n", "p.conf:1: password_file: missing value"},
        {"allowed_gid_group GID_ab\n", "p.conf:1: allowed_gid_group: 'GID_ab' is not a group ID "
                                       "(GID_ or GID- and 3 to 60 more letters, digits, '-' or "
                                       "'_')"},
        {"allowed_gid_group demo_group\n", NULL},
        {"auth_fail_max_delay 90000\n", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_defaults(&c);
        err[0] = '\0';
        assert_int_equal(config_load_buffer("p.conf", bad[i].text, strlen(bad[i].text), &c, err,
                                            sizeof(err), NULL),
                         -1);
        if (bad[i].msg)
            assert_string_equal(err, bad[i].msg);
        config_fini(&c);
    }
    /* The same path twice is fine. */
    config_defaults(&c);
    assert_int_equal(
        config_load_buffer("p.conf", "acl_file a\nacl_file a\n", 22, &c, err, sizeof(err), NULL),
        0);
    config_fini(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base64_round_trips),
        cmocka_unit_test(mosquitto_pbkdf2_entries_verify),
        cmocka_unit_test(mosquitto_sha512_entries_verify),
        cmocka_unit_test(malformed_entries_never_verify),
        cmocka_unit_test(new_hashes_verify_and_differ),
        cmocka_unit_test(password_file_lines),
        cmocka_unit_test_setup_teardown(user_rules_deny_first, acl_setup, acl_teardown),
        cmocka_unit_test_setup_teardown(anonymous_rules_apply_without_username, acl_setup,
                                        acl_teardown),
        cmocka_unit_test_setup_teardown(patterns_expand_client_id_and_username, acl_setup,
                                        acl_teardown),
        cmocka_unit_test_setup_teardown(wildcards_in_identity_disable_patterns, acl_setup,
                                        acl_teardown),
        cmocka_unit_test_setup_teardown(subscribe_filters, acl_setup, acl_teardown),
        cmocka_unit_test(filter_algebra),
        cmocka_unit_test_setup_teardown(p2p_target_rules, acl_setup, acl_teardown),
        cmocka_unit_test(p2p_patterns_for_everyone),
        cmocka_unit_test(acl_parse_errors_name_the_line),
        cmocka_unit_test(acl_topic_may_hold_blanks),
        cmocka_unit_test(signature_matches_openssl),
        cmocka_unit_test(apsara_usernames),
        cmocka_unit_test(apsara_keys_verify),
        cmocka_unit_test(apsara_file_errors),
        cmocka_unit_test(gid_client_ids),
        cmocka_unit_test_setup_teardown(no_files_anonymous_on_loopback_only, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(password_file_logins, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(failed_logins_are_slowed_down, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(apsara_logins, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(acl_through_identities_and_reload, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(missing_files_fail_with_the_key, world_setup,
                                        world_teardown),
        cmocka_unit_test(auth_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
