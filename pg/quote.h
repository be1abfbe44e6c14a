#pragma once

#include <string>
#include <string_view>

// Quoting of names and values for PostgreSQL, in one place for every module.
namespace sluice::pg {

// "name" with embedded double quotes doubled. Always quoted, so case, spaces and non-ASCII
// survive exactly as the source spelled them. Valid in SQL and in replication commands.
std::string QuoteIdentifier(std::string_view name);
// "schema"."name".
std::string QuoteQualifiedName(std::string_view schema, std::string_view name);

// A SQL string literal: 'value' with single quotes doubled; when the value holds a backslash
// the E'' form is used (backslashes doubled), so the literal means the same whatever
// standard_conforming_strings is.
std::string QuoteLiteral(std::string_view value);

// A string literal of the replication command grammar (START_REPLICATION options,
// CREATE_REPLICATION_SLOT): 'value' with single quotes doubled. That scanner has no backslash
// escapes and no E'' form, so QuoteLiteral would be wrong there.
std::string QuoteReplicationLiteral(std::string_view value);

}  // namespace sluice::pg
