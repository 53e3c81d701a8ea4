// test_http_routes.c - the HTTP route table (server/http_routes.c): every
// pattern matches its own paths and binds its fields, custom verbs and
// verbs are told apart (404 vs 405 with the allowed verb), malformed
// paths match nothing, and the OpenAPI document has one operation per
// route, every rpc of the service has a route, and every $ref resolves.
#include "../../server/http_routes.h"

#include "anvil/v1/anvil.pb-c.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static int
match(const char *verb, const char *path, struct route_match *m,
    const char **allow)
{
    static char buf[512];
    snprintf(buf, sizeof(buf), "%s", path);
    return routes_match(verb, buf, m, allow);
}

static void
test_literal_routes(void **state)
{
    (void) state;
    struct route_match m;
    const char        *allow;
    assert_int_equal(match("POST", "/job", &m, &allow), 0);
    assert_string_equal(m.route->rpc, "SubmitJob");
    assert_int_equal(m.route->body, ROUTE_BODY_SEED);
    assert_int_equal(match("POST", "/v1/jobs", &m, &allow), 0);
    assert_int_equal(m.route->body, ROUTE_BODY_MESSAGE);
    assert_int_equal(match("GET", "/v1/jobs", &m, &allow), 0);
    assert_string_equal(m.route->rpc, "ListJobs");
    assert_int_equal(match("POST", "/v1/jobs:batch", &m, &allow), 0);
    assert_string_equal(m.route->rpc, "SubmitJobs");
    assert_int_equal(match("POST", "/v1/jobs:poll", &m, &allow), 0);
    assert_string_equal(m.route->rpc, "Poll");
    assert_int_equal(match("GET", "/metrics", &m, &allow), 0);
    assert_int_equal(m.route->kind, ROUTE_METRICS);
    assert_int_equal(match("GET", "/healthz", &m, &allow), 0);
    assert_int_equal(m.route->kind, ROUTE_HEALTHZ);
    assert_int_equal(match("GET", "/readyz", &m, &allow), 0);
    assert_int_equal(m.route->kind, ROUTE_READYZ);
    assert_int_equal(match("GET", "/v1/openapi.json", &m, &allow), 0);
    assert_int_equal(m.route->kind, ROUTE_OPENAPI);
}

static void
test_fields_bound(void **state)
{
    (void) state;
    struct route_match m;
    const char        *allow;
    assert_int_equal(match("GET", "/v1/jobs/j42", &m, &allow), 0);
    assert_string_equal(m.route->rpc, "GetJob");
    assert_string_equal(m.route->wait_rpc, "WaitJob");
    assert_int_equal(m.n, 1);
    assert_string_equal(m.field[0], "id");
    assert_string_equal(m.value[0], "j42");
    assert_int_equal(match("POST", "/v1/jobs/j7:cancel", &m, &allow), 0);
    assert_string_equal(m.route->rpc, "CancelJob");
    assert_string_equal(m.value[0], "j7");
    assert_int_equal(match("POST", "/v1/jobs/j9:complete", &m, &allow), 0);
    assert_string_equal(m.route->rpc, "Complete");
    assert_string_equal(m.field[0], "job_id");
    assert_string_equal(m.value[0], "j9");
    assert_int_equal(match("POST", "/v1/jobs/j9:fail", &m, &allow), 0);
    assert_string_equal(m.route->rpc, "Fail");
    assert_int_equal(match("GET", "/v1/workflows/w3", &m, &allow), 0);
    assert_string_equal(m.route->wait_rpc, "WaitWorkflow");
    assert_string_equal(m.value[0], "w3");
    assert_int_equal(match("POST", "/v1/tokens/t2:revoke", &m, &allow), 0);
    assert_string_equal(m.route->rpc, "RevokeToken");
    assert_string_equal(m.value[0], "t2");
}

static void
test_not_found_and_wrong_verb(void **state)
{
    (void) state;
    struct route_match m;
    const char        *allow;
    assert_int_equal(match("GET", "/", &m, &allow), 404);
    assert_int_equal(match("GET", "", &m, &allow), 404);
    assert_int_equal(match("GET", "v1/jobs", &m, &allow), 404);
    assert_int_equal(match("GET", "/v1/jobs/", &m, &allow), 404);
    assert_int_equal(match("GET", "/v1//jobs", &m, &allow), 404);
    assert_int_equal(match("GET", "/v2/jobs", &m, &allow), 404);
    assert_int_equal(match("POST", "/v1/jobs/j1:explode", &m, &allow), 404);
    assert_int_equal(match("GET", "/v1/jobs/j1/extra", &m, &allow), 404);
    assert_int_equal(match("GET", "/a/b/c/d/e/f/g/h/i/j/k/l", &m, &allow), 404);
    assert_int_equal(match("DELETE", "/v1/jobs/j1", &m, &allow), 405);
    assert_string_equal(allow, "GET");
    assert_int_equal(match("GET", "/v1/jobs/j1:cancel", &m, &allow), 405);
    assert_string_equal(allow, "POST");
    assert_int_equal(match("GET", "/job", &m, &allow), 405);
    assert_string_equal(allow, "POST");
    assert_int_equal(match("POST", "/metrics", &m, &allow), 405);
    assert_string_equal(allow, "GET");
}

static void
test_every_rpc_has_a_route(void **state)
{
    (void) state;
    size_t                            n;
    const struct route               *r   = routes_all(&n);
    const ProtobufCServiceDescriptor *svc = &anvil__v1__anvil__descriptor;
    for (unsigned i = 0; i < svc->n_methods; i++) {
        bool found = false;
        for (size_t k = 0; k < n; k++) {
            if ((r[k].rpc && strcmp(r[k].rpc, svc->methods[i].name) == 0)
                || (r[k].wait_rpc
                    && strcmp(r[k].wait_rpc, svc->methods[i].name) == 0))
                found = true;
        }
        if (!found)
            fail_msg("rpc %s has no HTTP route", svc->methods[i].name);
    }
    for (size_t k = 0; k < n; k++) {
        if (r[k].rpc != NULL)
            assert_non_null(protobuf_c_service_descriptor_get_method_by_name(
                svc, r[k].rpc));
    }
}

// Every "$ref" in j names a schema of the document.
static void
check_refs(json_t *doc, json_t *j)
{
    if (json_is_object(j)) {
        const char *k;
        json_t     *v;
        json_object_foreach(j, k, v)
        {
            if (strcmp(k, "$ref") == 0) {
                const char *ref = json_string_value(v);
                assert_non_null(ref);
                const char *prefix = "#/components/schemas/";
                assert_memory_equal(ref, prefix, strlen(prefix));
                json_t *s = json_object_get(
                    json_object_get(
                        json_object_get(doc, "components"), "schemas"),
                    ref + strlen(prefix));
                if (s == NULL)
                    fail_msg("dangling $ref %s", ref);
            } else {
                check_refs(doc, v);
            }
        }
    } else if (json_is_array(j)) {
        size_t  i;
        json_t *v;
        json_array_foreach(j, i, v) check_refs(doc, v);
    }
}

static void
test_openapi_matches_the_table(void **state)
{
    (void) state;
    json_t *doc = routes_openapi("9.9.9");
    assert_non_null(doc);
    assert_string_equal(
        json_string_value(json_object_get(doc, "openapi")), "3.0.3");
    json_t             *paths = json_object_get(doc, "paths");
    size_t              n, ops = 0;
    const struct route *r = routes_all(&n);
    for (size_t k = 0; k < n; k++) {
        char verb[8];
        snprintf(verb, sizeof(verb), "%s", r[k].verb);
        for (char *c = verb; *c; c++)
            *c = (char) (*c - 'A' + 'a');
        json_t *op
            = json_object_get(json_object_get(paths, r[k].pattern), verb);
        if (op == NULL)
            fail_msg("route %s %s missing from the document", r[k].verb,
                r[k].pattern);
    }
    const char *p;
    json_t     *item;
    json_object_foreach(paths, p, item) ops += json_object_size(item);
    assert_int_equal(ops, n);
    // SubmitJobRequest's bytes field has its base64 sibling.
    json_t *props = json_object_get(
        json_object_get(
            json_object_get(json_object_get(doc, "components"), "schemas"),
            "SubmitJobRequest"),
        "properties");
    assert_non_null(json_object_get(props, "payload"));
    assert_non_null(json_object_get(props, "payload_base64"));
    check_refs(doc, doc);
    json_decref(doc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_routes),
        cmocka_unit_test(test_fields_bound),
        cmocka_unit_test(test_not_found_and_wrong_verb),
        cmocka_unit_test(test_every_rpc_has_a_route),
        cmocka_unit_test(test_openapi_matches_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
