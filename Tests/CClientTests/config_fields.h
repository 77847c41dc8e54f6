/* config_fields.h — GENERATED from PrepageCore's PrepageConfig.fields and page_size by
 * Tests/PrepageClientTests/ConfigFieldRoundTripTests.swift; do not edit. Regenerate with
 *   PREPAGE_WRITE_CONFIG_FIELDS=1 swift test --filter theCTestsFieldListIsTheCoreTable
 * Each field, a policy that reads it, and a value other than that policy's default. */
typedef struct core_field {
    const char *name;
    const char *policy;
    const char *value;
} core_field;

static const core_field core_fields[] = {
    {"policy", "dp", "dp"},
    {"min_pages", "dp", "2"},
    {"max_pages", "dp", "513"},
    {"k", "dp", "6"},
    {"initial_pages", "dp", "2"},
    {"gap", "dp", "1"},
    {"memory_pages", "dp", "1"},
    {"max_streams", "dp", "65"},
    {"forward_pages", "forward", "8"},
    {"backward_pages", "forward", "1"},
    {"ra_initial", "readahead", "5"},
    {"ra_max", "readahead", "33"},
    {"max_slots", "dp-plus", "65"},
    {"transitions", "dp-plus", "65"},
    {"half_life", "dp-plus", "23"},
    {"probe_staleness", "dp-plus", "2000.0"},
    {"fault_fee", "dp-plus", "2.2"},
    {"near_window", "dp-plus", "9"},
    {"min_evidence", "dp-plus", "0.02"},
    {"rtt_us", "dp-plus", "200.0"},
    {"page_us", "dp-plus", "65.536"},
    {"page_size", "dp", "8192"},
};
