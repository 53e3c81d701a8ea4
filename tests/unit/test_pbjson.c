// test_pbjson.c - the JSON converter of the HTTP endpoint (server/pbjson.c):
// printing and parsing every kind of field, round trips, each rule of the
// mapping with a bad input next to it, and pbjson_set_text.
#include "../../server/pbjson.h"
#include "anvil/v1/anvil.pb-c.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// cmocka.h needs these three before it: keep it in a block of its own.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

// ---- helpers ----

// Parses text as JSON and converts it to a message of type d; the JSON
// itself must be valid.
static int
parse(const ProtobufCMessageDescriptor *d, const char *text,
    ProtobufCMessage **out, struct anvil_error *err)
{
    json_error_t jerr;
    json_t      *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (j == NULL)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    int rc = pbjson_to_msg(d, j, out, err);
    json_decref(j);
    return rc;
}

static ProtobufCMessage *
parse_ok(const ProtobufCMessageDescriptor *d, const char *text)
{
    ProtobufCMessage  *m   = NULL;
    struct anvil_error err = { 0 };
    int                rc  = parse(d, text, &m, &err);
    if (rc != ANVIL_OK)
        fail_msg("%s: %s", text, err.msg);
    assert_non_null(m);
    return m;
}

// Parsing text fails with INVALID_ARGUMENT and a message containing want.
static void
parse_fails(
    const ProtobufCMessageDescriptor *d, const char *text, const char *want)
{
    ProtobufCMessage  *m   = (ProtobufCMessage *) &m; // not NULL
    struct anvil_error err = { 0 };
    assert_int_equal(parse(d, text, &m, &err), ANVIL_INVALID_ARGUMENT);
    assert_null(m);
    assert_int_equal(err.code, ANVIL_INVALID_ARGUMENT);
    if (strstr(err.msg, want) == NULL)
        fail_msg("%s: got \"%s\", want \"%s\"", text, err.msg, want);
}

// The compact JSON text of m; caller frees.
static char *
print(const ProtobufCMessage *m)
{
    json_t *j = pbjson_from_msg(m);
    assert_non_null(j);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    assert_non_null(s);
    return s;
}

// a and b pack to the same bytes.
static void
assert_same_msg(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t na = protobuf_c_message_get_packed_size(a);
    size_t nb = protobuf_c_message_get_packed_size(b);
    assert_int_equal(na, nb);
    uint8_t *pa = malloc(na + 1);
    uint8_t *pb = malloc(nb + 1);
    assert_non_null(pa);
    assert_non_null(pb);
    protobuf_c_message_pack(a, pa);
    protobuf_c_message_pack(b, pb);
    assert_memory_equal(pa, pb, na);
    free(pa);
    free(pb);
}

// m printed, parsed back, is m; the parsed copy is returned (caller frees).
static ProtobufCMessage *
round_trip(const ProtobufCMessage *m)
{
    json_t *j = pbjson_from_msg(m);
    assert_non_null(j);
    ProtobufCMessage  *back = NULL;
    struct anvil_error err  = { 0 };
    int                rc   = pbjson_to_msg(m->descriptor, j, &back, &err);
    json_decref(j);
    if (rc != ANVIL_OK)
        fail_msg("round trip: %s", err.msg);
    assert_same_msg(m, back);
    return back;
}

static void
assert_bytes(const ProtobufCBinaryData *bd, const char *want)
{
    assert_int_equal(bd->len, strlen(want));
    assert_memory_equal(bd->data, want, bd->len);
}

static void
assert_contains(const char *s, const char *want)
{
    if (strstr(s, want) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", s, want);
}

static void
assert_lacks(const char *s, const char *unwanted)
{
    if (strstr(s, unwanted) != NULL)
        fail_msg("\"%s\" contains \"%s\"", s, unwanted);
}

static ProtobufCMessage *
new_msg(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage  *m   = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(pbjson_to_msg(d, NULL, &m, &err), ANVIL_OK);
    return m;
}

static void
free_msg(void *m)
{
    protobuf_c_message_free_unpacked(m, NULL);
}

#define JOB &anvil__v1__job__descriptor
#define SUBMIT &anvil__v1__submit_job_request__descriptor
#define SUBMIT_WF &anvil__v1__submit_workflow_request__descriptor
#define LIST_JOBS &anvil__v1__list_jobs_request__descriptor

// ---- printing, and round trips ----

static void
test_pbjson_round_trips_a_job_with_a_json_payload(void **state)
{
    (void) state;
    Anvil__V1__Job job     = ANVIL__V1__JOB__INIT;
    char          *after[] = { "a", "b" };
    job.id                 = "j7";
    job.type               = "email";
    job.payload.data       = (uint8_t *) "{\"to\":\"x@y\",\"n\":[1,2.5]}";
    job.payload.len        = strlen((char *) job.payload.data);
    job.priority           = -3;
    job.state              = ANVIL__V1__JOB_STATE__JOB_STATE_SUCCEEDED;
    job.attempt            = 2;
    job.created_at_ms      = 1700000000123;
    job.n_after            = 2;
    job.after              = after;
    job.backoff_multiplier = 2.5;

    char *s = print(&job.base);
    assert_contains(s, "\"id\":\"j7\"");
    assert_contains(s, "\"payload\":{\"to\":\"x@y\",\"n\":[1,2.5]}");
    assert_contains(s, "\"priority\":-3");
    assert_contains(s, "\"state\":\"JOB_STATE_SUCCEEDED\"");
    assert_contains(s, "\"attempt\":2");
    assert_contains(s, "\"created_at_ms\":\"1700000000123\"");
    assert_contains(s, "\"started_at_ms\":\"0\""); // defaults are printed
    assert_contains(s, "\"error\":\"\"");
    assert_contains(s, "\"after\":[\"a\",\"b\"]");
    assert_contains(s, "\"backoff_multiplier\":2.5");
    assert_lacks(s, "payload_base64");
    assert_lacks(s, "\"result"); // empty bytes are left out
    free(s);
    free_msg(round_trip(&job.base));
}

static void
test_pbjson_prints_bytes_that_are_not_json_as_base64(void **state)
{
    (void) state;
    Anvil__V1__Job job = ANVIL__V1__JOB__INIT;
    job.payload.data   = (uint8_t *) "\x00\xff\x10";
    job.payload.len    = 3;
    char *s            = print(&job.base);
    assert_contains(s, "\"payload_base64\":\"AP8Q\"");
    assert_lacks(s, "\"payload\"");
    free(s);
    free_msg(round_trip(&job.base));

    // JSON text with spaces: printed as the value; parsed back, compact.
    job.payload.data = (uint8_t *) "{\"n\": 1}";
    job.payload.len  = strlen((char *) job.payload.data);
    s                = print(&job.base);
    assert_contains(s, "\"payload\":{\"n\":1}");
    assert_lacks(s, "\"payload_base64\"");
    ProtobufCMessage  *back = NULL;
    struct anvil_error err  = { 0 };
    json_t            *j    = pbjson_from_msg(&job.base);
    assert_int_equal(pbjson_to_msg(job.base.descriptor, j, &back, &err), 0);
    json_decref(j);
    assert_bytes(&((Anvil__V1__Job *) back)->payload, "{\"n\":1}");
    free_msg(back);
    free(s);

    job.payload.data = (uint8_t *) "42 x";
    job.payload.len  = 4;
    s                = print(&job.base);
    assert_contains(s, "\"payload_base64\"");
    free(s);
}

static void
test_pbjson_prints_a_json_string_payload_as_a_string(void **state)
{
    (void) state;
    Anvil__V1__Job job = ANVIL__V1__JOB__INIT;
    job.result.data    = (uint8_t *) "\"done\"";
    job.result.len     = 6;
    char *s            = print(&job.base);
    assert_contains(s, "\"result\":\"done\"");
    free(s);
    free_msg(round_trip(&job.base));
}

static void
test_pbjson_prints_64_bit_extremes_as_strings(void **state)
{
    (void) state;
    Anvil__V1__Request req = ANVIL__V1__REQUEST__INIT;
    req.request_id         = UINT64_MAX;
    char *s                = print(&req.base);
    assert_contains(s, "\"request_id\":\"18446744073709551615\"");
    free(s);
    free_msg(round_trip(&req.base));

    Anvil__V1__Job job = ANVIL__V1__JOB__INIT;
    job.run_at_ms      = INT64_MIN;
    s                  = print(&job.base);
    assert_contains(s, "\"run_at_ms\":\"-9223372036854775808\"");
    free(s);
    free_msg(round_trip(&job.base));
}

static void
test_pbjson_prints_nested_and_repeated_messages(void **state)
{
    (void) state;
    Anvil__V1__Job                 j1     = ANVIL__V1__JOB__INIT;
    Anvil__V1__Job                 j2     = ANVIL__V1__JOB__INIT;
    Anvil__V1__Job                *jobs[] = { &j1, &j2 };
    Anvil__V1__Workflow            wf     = ANVIL__V1__WORKFLOW__INIT;
    Anvil__V1__GetWorkflowResponse resp
        = ANVIL__V1__GET_WORKFLOW_RESPONSE__INIT;
    j1.id         = "j1";
    j2.id         = "j2";
    wf.id         = "w1";
    wf.state      = ANVIL__V1__WORKFLOW_STATE__WORKFLOW_STATE_RUNNING;
    wf.on_failure = ANVIL__V1__FAILURE_POLICY__CONTINUE;
    wf.n_steps    = 2;
    wf.steps      = jobs;
    resp.workflow = &wf;
    char *s       = print(&resp.base);
    assert_contains(s, "\"workflow\":{\"id\":\"w1\"");
    assert_contains(s, "\"state\":\"WORKFLOW_STATE_RUNNING\"");
    assert_contains(s, "\"on_failure\":\"CONTINUE\"");
    assert_contains(s, "\"steps\":[{\"id\":\"j1\"");
    assert_contains(s, "{\"id\":\"j2\"");
    free(s);
    free_msg(round_trip(&resp.base));

    // An unset sub-message is left out; an empty repeated field is [].
    Anvil__V1__GetWorkflowResponse none
        = ANVIL__V1__GET_WORKFLOW_RESPONSE__INIT;
    s = print(&none.base);
    assert_string_equal(s, "{}");
    free(s);
    Anvil__V1__ListJobsResponse list = ANVIL__V1__LIST_JOBS_RESPONSE__INIT;
    s                                = print(&list.base);
    assert_string_equal(s, "{\"jobs\":[],\"next_cursor\":\"\"}");
    free(s);
}

static void
test_pbjson_prints_bad_utf8_as_replacement_characters(void **state)
{
    (void) state;
    Anvil__V1__Job job = ANVIL__V1__JOB__INIT;
    job.error          = "bad \xff\xc0 byte \xe2\x82";
    char *s            = print(&job.base);
    assert_contains(s,
        "\"error\":\"bad \xef\xbf\xbd\xef\xbf\xbd byte "
        "\xef\xbf\xbd\xef\xbf\xbd\"");
    free(s);
}

static void
test_pbjson_round_trips_doubles_that_json_has_no_number_for(void **state)
{
    (void) state;
    Anvil__V1__Job job     = ANVIL__V1__JOB__INIT;
    job.backoff_multiplier = INFINITY;
    char *s                = print(&job.base);
    assert_contains(s, "\"backoff_multiplier\":\"Infinity\"");
    free(s);
    free_msg(round_trip(&job.base));
    job.backoff_multiplier = NAN;
    s                      = print(&job.base);
    assert_contains(s, "\"backoff_multiplier\":\"NaN\"");
    free(s);
}

// ---- parsing ----

static void
test_pbjson_parses_submit_job_request_from_camel_case(void **state)
{
    (void) state;
    ProtobufCMessage            *m = parse_ok(SUBMIT,
                   "{\"type\":\"email\",\"payload\":{\"a\":[1, 2]},\"delayMs\":\"5000\","
                              "\"runAtMs\":17,\"maxAttempts\":4,\"idempotencyKey\":\"k1\","
                              "\"backoffMultiplier\":1.5,\"initialBackoffMs\":\"250\"}");
    Anvil__V1__SubmitJobRequest *r = (Anvil__V1__SubmitJobRequest *) m;
    assert_string_equal(r->type, "email");
    assert_bytes(&r->payload, "{\"a\":[1,2]}");
    assert_int_equal(r->delay_ms, 5000);
    assert_int_equal(r->run_at_ms, 17);
    assert_int_equal(r->max_attempts, 4);
    assert_string_equal(r->idempotency_key, "k1");
    assert_true(r->backoff_multiplier == 1.5);
    assert_int_equal(r->initial_backoff_ms, 250);
    assert_string_equal(r->queue, ""); // left at the default
    free_msg(round_trip(m));
    free_msg(m);
}

static void
test_pbjson_parses_submit_job_request_from_snake_case(void **state)
{
    (void) state;
    ProtobufCMessage            *m = parse_ok(SUBMIT,
                   "{\"type\":\"t\",\"queue\":\"q\",\"priority\":-7,\"delay_ms\":-1,"
                              "\"max_attempts\":1,\"idempotency_key\":\"k\",\"timeout_ms\":\"9\","
                              "\"payload_base64\":\"AAEC\"}");
    Anvil__V1__SubmitJobRequest *r = (Anvil__V1__SubmitJobRequest *) m;
    assert_string_equal(r->queue, "q");
    assert_int_equal(r->priority, -7);
    assert_int_equal(r->delay_ms, -1);
    assert_int_equal(r->timeout_ms, 9);
    assert_int_equal(r->payload.len, 3);
    assert_memory_equal(r->payload.data, "\x00\x01\x02", 3);
    free_msg(m);

    m = parse_ok(SUBMIT, "{\"payloadBase64\":\"aGk=\"}");
    assert_bytes(&((Anvil__V1__SubmitJobRequest *) m)->payload, "hi");
    free_msg(m);
}

static void
test_pbjson_parses_a_workflow_spec_with_steps(void **state)
{
    (void) state;
    ProtobufCMessage        *m = parse_ok(SUBMIT_WF,
               "{\"spec\":{\"name\":\"etl\",\"onFailure\":\"continue\","
                      "\"timeout_ms\":60000,\"steps\":["
                      "{\"name\":\"a\",\"type\":\"extract\",\"payload\":\"s3://x\"},"
                      "{\"name\":\"b\",\"type\":\"load\",\"after\":[\"a\"],"
                      "\"payload_base64\":\"/w==\",\"maxAttempts\":2}]}}");
    Anvil__V1__WorkflowSpec *spec
        = ((Anvil__V1__SubmitWorkflowRequest *) m)->spec;
    assert_non_null(spec);
    assert_string_equal(spec->name, "etl");
    assert_int_equal(spec->on_failure, ANVIL__V1__FAILURE_POLICY__CONTINUE);
    assert_int_equal(spec->timeout_ms, 60000);
    assert_int_equal(spec->n_steps, 2);
    assert_string_equal(spec->steps[0]->type, "extract");
    assert_bytes(&spec->steps[0]->payload, "\"s3://x\"");
    assert_int_equal(spec->steps[1]->n_after, 1);
    assert_string_equal(spec->steps[1]->after[0], "a");
    assert_bytes(&spec->steps[1]->payload, "\xff");
    assert_int_equal(spec->steps[1]->max_attempts, 2);
    free_msg(round_trip(m));
    free_msg(m);
}

static void
test_pbjson_takes_null_and_an_absent_object_as_defaults(void **state)
{
    (void) state;
    Anvil__V1__SubmitJobRequest empty = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    ProtobufCMessage           *m     = parse_ok(SUBMIT,
                      "{\"type\":null,\"priority\":null,\"payload\":null,"
                                    "\"payload_base64\":null,\"delayMs\":null}");
    assert_same_msg(m, &empty.base);
    free_msg(m);
    // An unknown field is refused even when null.
    parse_fails(SUBMIT, "{\"jobs\":null}", "unknown field 'jobs'");
    struct anvil_error err = { 0 };
    assert_int_equal(pbjson_to_msg(SUBMIT, NULL, &m, &err), ANVIL_OK);
    assert_same_msg(m, &empty.base);
    free_msg(m);
}

static void
test_pbjson_parses_64_bit_numbers_from_numbers_and_strings(void **state)
{
    (void) state;
    ProtobufCMessage            *m = parse_ok(SUBMIT,
                   "{\"delay_ms\":9223372036854775807,\"run_at_ms\":"
                              "\"-9223372036854775808\",\"timeout_ms\":1e3}");
    Anvil__V1__SubmitJobRequest *r = (Anvil__V1__SubmitJobRequest *) m;
    assert_true(r->delay_ms == INT64_MAX);
    assert_true(r->run_at_ms == INT64_MIN);
    assert_int_equal(r->timeout_ms, 1000);
    free_msg(m);
    m = parse_ok(&anvil__v1__request__descriptor,
        "{\"request_id\":\"18446744073709551615\"}");
    assert_true(((Anvil__V1__Request *) m)->request_id == UINT64_MAX);
    free_msg(m);
    m = parse_ok(&anvil__v1__request__descriptor, "{\"requestId\":12}");
    assert_int_equal(((Anvil__V1__Request *) m)->request_id, 12);
    free_msg(m);
    parse_fails(SUBMIT, "{\"delay_ms\":\"9223372036854775808\"}",
        "'delay_ms' is out of range for int64");
    parse_fails(&anvil__v1__request__descriptor, "{\"request_id\":-1}",
        "'request_id' is out of range for uint64");
    parse_fails(&anvil__v1__request__descriptor, "{\"request_id\":\"-1\"}",
        "out of range");
    parse_fails(SUBMIT, "{\"delay_ms\":\"12ms\"}",
        "'delay_ms' must be an integer (int64), got \"12ms\"");
    parse_fails(SUBMIT, "{\"delay_ms\":\" 12\"}", "must be an integer");
    parse_fails(SUBMIT, "{\"delay_ms\":\"\"}", "must be an integer");
    parse_fails(SUBMIT, "{\"delay_ms\":\"+1\"}", "must be an integer");
}

static void
test_pbjson_parses_every_form_of_an_enum(void **state)
{
    (void) state;
    const char *forms[] = { "\"JOB_STATE_QUEUED\"", "\"QUEUED\"", "\"queued\"",
        "\"Job_State_Queued\"", "3", "\"3\"" };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        char text[64];
        snprintf(text, sizeof(text), "{\"state\":%s}", forms[i]);
        ProtobufCMessage *m = parse_ok(LIST_JOBS, text);
        assert_int_equal(((Anvil__V1__ListJobsRequest *) m)->state,
            ANVIL__V1__JOB_STATE__JOB_STATE_QUEUED);
        free_msg(m);
    }
    const char *roles[] = { "ROLE_ADMIN", "ADMIN", "admin", "role_admin" };
    for (size_t i = 0; i < 4; i++) {
        struct anvil_error             err = { 0 };
        Anvil__V1__CreateTokenRequest *r
            = (Anvil__V1__CreateTokenRequest *) new_msg(
                &anvil__v1__create_token_request__descriptor);
        assert_int_equal(
            pbjson_set_text(&r->base, "role", roles[i], &err), ANVIL_OK);
        assert_int_equal(r->role, ANVIL__V1__ROLE__ROLE_ADMIN);
        free_msg(r);
    }
    ProtobufCMessage *m
        = parse_ok(&anvil__v1__reply__descriptor, "{\"code\":\"not_found\"}");
    assert_int_equal(
        ((Anvil__V1__Reply *) m)->code, ANVIL__V1__CODE__NOT_FOUND);
    free_msg(m);
}

// ---- bad input: each names the field and what it expects ----

static void
test_pbjson_rejects_unknown_fields_naming_the_path(void **state)
{
    (void) state;
    parse_fails(SUBMIT, "{\"type\":\"t\",\"foo\":1}",
        "unknown field 'foo' in anvil.v1.SubmitJobRequest");
    parse_fails(SUBMIT_WF,
        "{\"spec\":{\"steps\":[{\"name\":\"a\"},{},{\"foo\":1}]}}",
        "unknown field 'spec.steps[2].foo' in anvil.v1.StepSpec");
    // Only a bytes field has a _base64 sibling; the camel form needs the
    // exact case.
    parse_fails(SUBMIT, "{\"type_base64\":\"\"}", "unknown field");
    parse_fails(SUBMIT, "{\"DelayMs\":1}", "unknown field 'DelayMs'");
    parse_fails(SUBMIT, "{\"delay_Ms\":1}", "unknown field");
}

static void
test_pbjson_rejects_wrong_json_types(void **state)
{
    (void) state;
    parse_fails(SUBMIT, "{\"type\":5}", "'type' must be a string, got 5");
    parse_fails(
        SUBMIT, "{\"type\":[\"a\"]}", "'type' must be a string, got an array");
    parse_fails(SUBMIT, "{\"priority\":\"high\"}",
        "'priority' must be an integer (int32), got \"high\"");
    parse_fails(SUBMIT, "{\"priority\":{}}",
        "'priority' must be an integer (int32), got an object");
    parse_fails(SUBMIT, "{\"priority\":true}", "got true");
    parse_fails(SUBMIT, "{\"priority\":1.5}",
        "'priority' must be an integer (int32), got 1.5");
    parse_fails(SUBMIT, "{\"backoff_multiplier\":\"fast\"}",
        "'backoff_multiplier' must be a number");
    parse_fails(&anvil__v1__fail_request__descriptor, "{\"no_retry\":1}",
        "'no_retry' must be true or false, got 1");
    parse_fails(&anvil__v1__poll_request__descriptor, "{\"queues\":\"q\"}",
        "'queues' must be an array, got \"q\"");
    parse_fails(&anvil__v1__poll_request__descriptor, "{\"queues\":[\"a\",3]}",
        "'queues[1]' must be a string, got 3");
    parse_fails(&anvil__v1__poll_request__descriptor,
        "{\"queues\":[\"a\",null]}", "'queues[1]' must not be null");
    parse_fails(SUBMIT, "{\"type\":\"a\\u0000b\"}", "must not contain NUL");
}

static void
test_pbjson_rejects_a_non_object_where_a_message_is_expected(void **state)
{
    (void) state;
    parse_fails(SUBMIT_WF, "{\"spec\":[]}",
        "'spec' must be an object (anvil.v1.WorkflowSpec), got an array");
    parse_fails(SUBMIT_WF, "{\"spec\":{\"steps\":[{},\"x\"]}}",
        "'spec.steps[1]' must be an object (anvil.v1.StepSpec), got \"x\"");
    parse_fails(SUBMIT_WF, "{\"spec\":{\"steps\":{}}}",
        "'spec.steps' must be an array");
    parse_fails(SUBMIT, "[1]",
        "must be an object (anvil.v1.SubmitJobRequest), got an array");
    parse_fails(SUBMIT, "\"x\"", "got a string");
}

static void
test_pbjson_rejects_numbers_out_of_range(void **state)
{
    (void) state;
    ProtobufCMessage *m = parse_ok(
        SUBMIT, "{\"priority\":-2147483648,\"max_attempts\":4294967295}");
    assert_int_equal(((Anvil__V1__SubmitJobRequest *) m)->priority, INT32_MIN);
    assert_int_equal(
        ((Anvil__V1__SubmitJobRequest *) m)->max_attempts, UINT32_MAX);
    free_msg(m);
    parse_fails(SUBMIT, "{\"priority\":2147483648}",
        "'priority' is out of range for int32 (-2147483648 to 2147483647)");
    parse_fails(SUBMIT, "{\"priority\":-2147483649}", "out of range");
    parse_fails(SUBMIT, "{\"priority\":1e10}", "out of range");
    parse_fails(SUBMIT, "{\"max_attempts\":-1}",
        "'max_attempts' is out of range for uint32");
    parse_fails(SUBMIT, "{\"max_attempts\":4294967296}", "out of range");
    parse_fails(SUBMIT, "{\"backoff_multiplier\":\"1e999\"}",
        "out of range for a double");
}

static void
test_pbjson_rejects_bad_enum_values(void **state)
{
    (void) state;
    parse_fails(LIST_JOBS, "{\"state\":\"DONE\"}",
        "'state' must be a value of anvil.v1.JobState, such as "
        "JOB_STATE_PENDING, got \"DONE\"");
    parse_fails(LIST_JOBS, "{\"state\":99}", "got 99");
    parse_fails(LIST_JOBS, "{\"state\":\"\"}", "anvil.v1.JobState");
    parse_fails(LIST_JOBS, "{\"state\":\"STATE_QUEUED\"}", "JobState");
    parse_fails(LIST_JOBS, "{\"state\":1.5}", "an enum name or number");
    parse_fails(LIST_JOBS, "{\"state\":[]}", "an enum name or number");
}

static void
test_pbjson_rejects_a_field_given_twice(void **state)
{
    (void) state;
    parse_fails(SUBMIT, "{\"payload\":{},\"payload_base64\":\"AA==\"}",
        "'payload_base64': give payload or payload_base64, not both");
    parse_fails(
        SUBMIT, "{\"payloadBase64\":\"AA==\",\"payload\":1}", "not both");
    parse_fails(SUBMIT, "{\"delay_ms\":1,\"delayMs\":2}",
        "'delayMs': field delay_ms is given twice");
    // null does not count as given.
    ProtobufCMessage *m
        = parse_ok(SUBMIT, "{\"payload\":null,\"payload_base64\":\"AA==\"}");
    free_msg(m);
}

static void
test_pbjson_rejects_bad_base64(void **state)
{
    (void) state;
    parse_fails(SUBMIT, "{\"payload_base64\":\"!!!!\"}",
        "'payload_base64' must be a base64 string, got \"!!!!\"");
    parse_fails(SUBMIT, "{\"payload_base64\":\"abc\"}", "base64");
    parse_fails(SUBMIT, "{\"payload_base64\":\"a=bc\"}", "base64");
    parse_fails(SUBMIT, "{\"payload_base64\":\"aGk==\"}", "base64");
    parse_fails(SUBMIT, "{\"payload_base64\":\"====\"}", "base64");
    parse_fails(SUBMIT, "{\"payload_base64\":\"aGk\"}", "base64");
    parse_fails(SUBMIT, "{\"payload_base64\":\"aGk=\\naGk=\"}", "base64");
    parse_fails(SUBMIT, "{\"payload_base64\":{}}", "base64");
    ProtobufCMessage *m = parse_ok(SUBMIT, "{\"payload_base64\":\"\"}");
    assert_int_equal(((Anvil__V1__SubmitJobRequest *) m)->payload.len, 0);
    free_msg(m);
}

// ---- pbjson_set_text ----

static void
set_text_fails(
    ProtobufCMessage *m, const char *name, const char *text, const char *want)
{
    struct anvil_error err = { 0 };
    assert_int_equal(
        pbjson_set_text(m, name, text, &err), ANVIL_INVALID_ARGUMENT);
    if (strstr(err.msg, want) == NULL)
        fail_msg("%s=%s: got \"%s\", want \"%s\"", name, text, err.msg, want);
}

static void
test_pbjson_sets_scalars_from_text(void **state)
{
    (void) state;
    ProtobufCMessage           *m   = new_msg(LIST_JOBS);
    Anvil__V1__ListJobsRequest *r   = (Anvil__V1__ListJobsRequest *) m;
    struct anvil_error          err = { 0 };
    assert_int_equal(pbjson_set_text(m, "state", "succeeded", &err), 0);
    assert_int_equal(pbjson_set_text(m, "limit", "50", &err), 0);
    assert_int_equal(pbjson_set_text(m, "type", "email", &err), 0);
    assert_int_equal(pbjson_set_text(m, "type", "sms", &err), 0); // replaces
    assert_int_equal(pbjson_set_text(m, "cursor", "", &err), 0);
    assert_int_equal(r->state, ANVIL__V1__JOB_STATE__JOB_STATE_SUCCEEDED);
    assert_int_equal(r->limit, 50);
    assert_string_equal(r->type, "sms");
    assert_string_equal(r->cursor, "");
    free_msg(m);

    m = new_msg(SUBMIT);
    assert_int_equal(pbjson_set_text(m, "delayMs", "-5", &err), 0);
    assert_int_equal(pbjson_set_text(m, "backoff_multiplier", "2.5", &err), 0);
    assert_int_equal(((Anvil__V1__SubmitJobRequest *) m)->delay_ms, -5);
    assert_true(((Anvil__V1__SubmitJobRequest *) m)->backoff_multiplier == 2.5);
    free_msg(m);

    m                         = new_msg(&anvil__v1__fail_request__descriptor);
    Anvil__V1__FailRequest *f = (Anvil__V1__FailRequest *) m;
    assert_int_equal(pbjson_set_text(m, "no_retry", "true", &err), 0);
    assert_true(f->no_retry);
    assert_int_equal(pbjson_set_text(m, "noRetry", "0", &err), 0);
    assert_false(f->no_retry);
    assert_int_equal(pbjson_set_text(m, "no_retry", "1", &err), 0);
    assert_true(f->no_retry);
    set_text_fails(m, "no_retry", "yes", "true, false, 1 or 0");
    set_text_fails(m, "no_retry", "TRUE", "true, false, 1 or 0");
    free_msg(m);
}

static void
test_pbjson_appends_repeated_scalars_from_text(void **state)
{
    (void) state;
    ProtobufCMessage       *m   = new_msg(&anvil__v1__poll_request__descriptor);
    Anvil__V1__PollRequest *r   = (Anvil__V1__PollRequest *) m;
    struct anvil_error      err = { 0 };
    assert_int_equal(pbjson_set_text(m, "queues", "a", &err), 0);
    assert_int_equal(pbjson_set_text(m, "queues", "b", &err), 0);
    assert_int_equal(pbjson_set_text(m, "types", "t", &err), 0);
    assert_int_equal(r->n_queues, 2);
    assert_string_equal(r->queues[0], "a");
    assert_string_equal(r->queues[1], "b");
    assert_int_equal(r->n_types, 1);
    free_msg(round_trip(m));
    free_msg(m);
}

static void
test_pbjson_rejects_bad_text(void **state)
{
    (void) state;
    ProtobufCMessage *m = new_msg(LIST_JOBS);
    set_text_fails(m, "limit", "-1", "'limit' is out of range for uint32");
    set_text_fails(m, "limit", "4294967296", "out of range");
    set_text_fails(m, "limit", "12abc", "'limit' must be an integer (uint32)");
    set_text_fails(m, "limit", "", "must be an integer");
    set_text_fails(m, "limit", " 1", "must be an integer");
    set_text_fails(m, "state", "done", "anvil.v1.JobState");
    set_text_fails(m, "state", "42", "anvil.v1.JobState");
    set_text_fails(
        m, "bogus", "1", "unknown field 'bogus' in anvil.v1.ListJobsRequest");
    set_text_fails(m, "type", "\xff", "not valid UTF-8");
    assert_int_equal(((Anvil__V1__ListJobsRequest *) m)->limit, 0);
    free_msg(m);

    m = new_msg(SUBMIT);
    set_text_fails(m, "payload", "x", "'payload' cannot be given as text");
    set_text_fails(m, "priority", "2147483648", "out of range for int32");
    set_text_fails(m, "delay_ms", "1.5", "must be an integer (int64)");
    set_text_fails(m, "backoff_multiplier", "x", "must be a number");
    free_msg(m);
    m = new_msg(&anvil__v1__poll_request__descriptor);
    set_text_fails(m, "info", "x", "it is a message field");
    free_msg(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pbjson_round_trips_a_job_with_a_json_payload),
        cmocka_unit_test(test_pbjson_prints_bytes_that_are_not_json_as_base64),
        cmocka_unit_test(test_pbjson_prints_a_json_string_payload_as_a_string),
        cmocka_unit_test(test_pbjson_prints_64_bit_extremes_as_strings),
        cmocka_unit_test(test_pbjson_prints_nested_and_repeated_messages),
        cmocka_unit_test(test_pbjson_prints_bad_utf8_as_replacement_characters),
        cmocka_unit_test(
            test_pbjson_round_trips_doubles_that_json_has_no_number_for),
        cmocka_unit_test(test_pbjson_parses_submit_job_request_from_camel_case),
        cmocka_unit_test(test_pbjson_parses_submit_job_request_from_snake_case),
        cmocka_unit_test(test_pbjson_parses_a_workflow_spec_with_steps),
        cmocka_unit_test(
            test_pbjson_takes_null_and_an_absent_object_as_defaults),
        cmocka_unit_test(
            test_pbjson_parses_64_bit_numbers_from_numbers_and_strings),
        cmocka_unit_test(test_pbjson_parses_every_form_of_an_enum),
        cmocka_unit_test(test_pbjson_rejects_unknown_fields_naming_the_path),
        cmocka_unit_test(test_pbjson_rejects_wrong_json_types),
        cmocka_unit_test(
            test_pbjson_rejects_a_non_object_where_a_message_is_expected),
        cmocka_unit_test(test_pbjson_rejects_numbers_out_of_range),
        cmocka_unit_test(test_pbjson_rejects_bad_enum_values),
        cmocka_unit_test(test_pbjson_rejects_a_field_given_twice),
        cmocka_unit_test(test_pbjson_rejects_bad_base64),
        cmocka_unit_test(test_pbjson_sets_scalars_from_text),
        cmocka_unit_test(test_pbjson_appends_repeated_scalars_from_text),
        cmocka_unit_test(test_pbjson_rejects_bad_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
