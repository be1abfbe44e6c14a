#include "config/dsn.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <string_view>

#include "config/environment.h"

namespace sluice::config {
namespace {

// One parameter as written in the string: [key_begin, value_end) covers "key = value".
struct Param {
  std::string key;    // decoded
  std::string value;  // decoded (unquoted, unescaped / percent-decoded)
  size_t value_begin = 0;
  size_t value_end = 0;  // the raw value, quotes included, is [value_begin, value_end)
};

bool IsSecretKey(const std::string& key) { return key == "password" || key == "sslpassword"; }

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

size_t UriPrefixLength(const std::string& dsn) {
  for (const char* prefix : {"postgresql://", "postgres://"}) {
    const std::string p = prefix;
    if (dsn.compare(0, p.size(), p) == 0) return p.size();
  }
  return 0;
}

// Tokenizes key/value form as libpq's conninfo_parse does; tolerant: a token without '=' is
// skipped and an unterminated quote runs to the end.
std::vector<Param> ParseKeyValue(const std::string& s) {
  std::vector<Param> params;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    while (i < n && IsSpace(s[i])) ++i;
    if (i >= n) break;
    const size_t key_begin = i;
    while (i < n && s[i] != '=' && !IsSpace(s[i])) ++i;
    Param p;
    p.key = s.substr(key_begin, i - key_begin);
    while (i < n && IsSpace(s[i])) ++i;
    if (i >= n || s[i] != '=') continue;  // malformed: not a parameter
    ++i;
    while (i < n && IsSpace(s[i])) ++i;
    p.value_begin = i;
    if (i < n && s[i] == '\'') {
      ++i;
      while (i < n && s[i] != '\'') {
        if (s[i] == '\\' && i + 1 < n) ++i;
        p.value.push_back(s[i++]);
      }
      if (i < n) ++i;  // closing quote
    } else {
      while (i < n && !IsSpace(s[i])) {
        if (s[i] == '\\' && i + 1 < n) ++i;
        p.value.push_back(s[i++]);
      }
    }
    p.value_end = i;
    params.push_back(std::move(p));
  }
  return params;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string PercentEncode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  return out;
}

struct UriParts {
  std::vector<Param> params;  // the userinfo password (key "password") and query parameters
  size_t query_begin = std::string::npos;  // index of '?', if any
};

// Splits a URI as libpq's conninfo_uri_parse_options does, as far as secrets and query
// parameters are concerned.
UriParts ParseUri(const std::string& s) {
  UriParts parts;
  const size_t start = UriPrefixLength(s);
  size_t i = start;
  while (i < s.size() && s[i] != '@' && s[i] != '/') ++i;
  size_t after_userinfo = start;
  if (i < s.size() && s[i] == '@') {
    const size_t at = i;
    const size_t colon = s.find(':', start);
    if (colon != std::string::npos && colon < at) {
      Param p;
      p.key = "password";
      p.value_begin = colon + 1;
      p.value_end = at;
      p.value = PercentDecode(s.substr(p.value_begin, at - p.value_begin));
      parts.params.push_back(std::move(p));
    }
    after_userinfo = at + 1;
  }
  parts.query_begin = s.find('?', after_userinfo);
  if (parts.query_begin == std::string::npos) return parts;
  size_t pos = parts.query_begin + 1;
  while (pos <= s.size()) {
    size_t end = s.find('&', pos);
    if (end == std::string::npos) end = s.size();
    const size_t eq = s.find('=', pos);
    if (eq != std::string::npos && eq < end) {
      Param p;
      p.key = PercentDecode(s.substr(pos, eq - pos));
      p.value_begin = eq + 1;
      p.value_end = end;
      p.value = PercentDecode(s.substr(p.value_begin, end - p.value_begin));
      parts.params.push_back(std::move(p));
    }
    pos = end + 1;
  }
  return parts;
}

std::vector<Param> ParseAny(const std::string& dsn) {
  return IsUriDsn(dsn) ? ParseUri(dsn).params : ParseKeyValue(dsn);
}

// Replaces the raw spans of `targets` (sorted, non-overlapping) in `s` by `with(param)`.
template <typename Fn>
std::string ReplaceSpans(const std::string& s, const std::vector<Param>& targets, Fn with) {
  std::string out;
  size_t pos = 0;
  for (const Param& p : targets) {
    out.append(s, pos, p.value_begin - pos);
    out.append(with(p));
    pos = p.value_end;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

std::string QuoteKeyValue(const std::string& value) {
  const bool needs_quotes = value.empty() || std::any_of(value.begin(), value.end(), [](char c) {
                              return IsSpace(c) || c == '\'' || c == '\\';
                            });
  if (!needs_quotes) return value;
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

// The values of a URI that hold free text: the user name, the password, the database name and
// each query parameter value (not the host list, nor query keys), in order. Splits as
// libpq's conninfo_uri_parse_options does.
std::vector<Param> UriTextValues(const std::string& s) {
  std::vector<Param> values;
  const size_t start = UriPrefixLength(s);
  size_t i = start;
  while (i < s.size() && s[i] != '@' && s[i] != '/') ++i;
  size_t host_begin = start;
  if (i < s.size() && s[i] == '@') {
    const size_t colon = s.find(':', start);
    Param user;
    user.key = "user";
    user.value_begin = start;
    user.value_end = colon < i ? colon : i;
    values.push_back(user);
    if (colon < i) {
      Param password;
      password.key = "password";
      password.value_begin = colon + 1;
      password.value_end = i;
      values.push_back(password);
    }
    host_begin = i + 1;
  }
  const UriParts parts = ParseUri(s);
  const size_t slash = s.find('/', host_begin);
  if (slash != std::string::npos && slash < parts.query_begin) {
    Param dbname;
    dbname.key = "dbname";
    dbname.value_begin = slash + 1;
    dbname.value_end = std::min(parts.query_begin, s.size());
    values.push_back(dbname);
  }
  for (const Param& p : parts.params) {
    if (parts.query_begin != std::string::npos && p.value_begin > parts.query_begin) {
      values.push_back(p);
    }
  }
  return values;
}

// How a value is spelled in a connection string.
enum class Spelling { kUnquoted, kQuoted, kPercentEncoded };

// An unquoted key/value value's text with libpq's backslash escapes resolved.
std::string UnescapeUnquoted(const std::string& raw) {
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size()) ++i;
    out.push_back(raw[i]);
  }
  return out;
}

// `value` as the inside of a single-quoted key/value value.
std::string EscapeForQuotes(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// One value of a connection string template (raw spelling) with its ${VAR} references
// expanded so that libpq reads each variable's value exactly.
core::Result<std::string> ExpandValue(const std::string& raw, Spelling spelling) {
  SLUICE_ASSIGN_OR_RETURN(std::vector<TemplatePiece> pieces, SplitTemplate(raw));
  std::string out;
  for (const TemplatePiece& piece : pieces) {
    std::string text = piece.text;
    if (piece.is_variable) {
      SLUICE_ASSIGN_OR_RETURN(text, EnvironmentValue(piece.text));
    }
    switch (spelling) {
      case Spelling::kUnquoted:  // decoded here, quoted whole below
        out += piece.is_variable ? text : UnescapeUnquoted(text);
        break;
      case Spelling::kQuoted:  // literal text is already spelled for the quotes
        out += piece.is_variable ? EscapeForQuotes(text) : text;
        break;
      case Spelling::kPercentEncoded:
        out += piece.is_variable ? PercentEncode(text) : text;
        break;
    }
  }
  if (spelling == Spelling::kUnquoted) return "'" + EscapeForQuotes(out) + "'";
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Where a secret may begin in `text` read as a connection string, or npos: the first mention
// of password (sslpassword included), or the start of a URI's user information. Everything
// from there on may be part of a secret when the string is malformed.
size_t SecretStart(const std::string& text) {
  size_t start = Lower(text).find("password");
  if (IsUriDsn(text)) {
    const size_t authority = UriPrefixLength(text);
    size_t i = authority;
    while (i < text.size() && text[i] != '@' && text[i] != '/') ++i;
    const bool has_userinfo = i < text.size() && text[i] == '@';
    // A query key may spell the keyword percent-encoded (pass%77ord).
    const bool names_password = Lower(PercentDecode(text)).find("password") != std::string::npos;
    if (has_userinfo || names_password) start = std::min(start, authority);
  }
  return start;
}

// libpq's connection string parse errors that quote part of the string, as the text before
// and after the quoted part (PostgreSQL 15-17, untranslated).
struct QuotingError {
  std::string_view before;  // found anywhere in the message; the quoted part follows it
  std::string_view after;   // the end of the message
};
constexpr QuotingError kQuotingErrors[] = {
    {"missing \"=\" after \"", "\" in connection info string"},
    {"invalid connection option \"", "\""},
    {"invalid percent-encoded token: \"", "\""},
    {"forbidden value %00 in percent-encoded value: \"", "\""},
    {"unexpected spaces found in \"", "\", use percent-encoded spaces (%20) instead"},
    {"invalid URI propagated to internal parser routine: \"", "\""},
    {"in IPv6 host address in URI: \"", "\""},
    {"IPv6 host address may not be empty in URI: \"", "\""},
    {"(expected \":\" or \"/\"): \"", "\""},
    {"separator \"=\" in URI query parameter: \"", "\""},
    {"invalid URI query parameter: \"", "\""},
};

// True if `fragment` of `dsn` cannot be part of a secret: it occurs in `dsn`, and only before
// `secret_start`.
bool IsBeforeSecrets(const std::string& dsn, const std::string& fragment, size_t secret_start) {
  const size_t first = dsn.find(fragment);
  if (first == std::string::npos) return false;  // decoded or rearranged: cannot tell
  const size_t from = secret_start >= fragment.size() ? secret_start - fragment.size() + 1 : 0;
  return dsn.find(fragment, from) == std::string::npos;
}

// libpq's parse error `message` about `dsn` without anything that may be part of a secret.
std::string WithoutSecretFragments(const std::string& message, const std::string& dsn) {
  const size_t secret_start = SecretStart(dsn);
  if (secret_start == std::string::npos || message.find('"') == std::string::npos) {
    return message;
  }
  for (const QuotingError& form : kQuotingErrors) {
    const size_t at = message.find(form.before);
    if (at == std::string::npos || !message.ends_with(form.after)) continue;
    const size_t begin = at + form.before.size();
    if (begin + form.after.size() > message.size()) continue;
    const std::string fragment = message.substr(begin, message.size() - form.after.size() - begin);
    if (IsBeforeSecrets(dsn, fragment, secret_start)) return message;
    return message.substr(0, begin) + kRedacted + std::string(form.after);
  }
  return "libpq cannot parse it (its message is not shown: it may quote part of a password)";
}

}  // namespace

bool IsUriDsn(const std::string& dsn) { return UriPrefixLength(dsn) > 0; }

std::string RedactDsn(const std::string& dsn) {
  std::vector<Param> secrets;
  for (Param& p : ParseAny(dsn)) {
    if (IsSecretKey(p.key)) secrets.push_back(std::move(p));
  }
  return ReplaceSpans(dsn, secrets, [](const Param&) { return std::string(kRedacted); });
}

std::string RedactSecrets(const std::string& text, const std::vector<std::string>& dsns) {
  std::set<std::string> secrets;
  for (const std::string& dsn : dsns) {
    for (const Param& p : ParseAny(dsn)) {
      if (!IsSecretKey(p.key)) continue;
      if (!p.value.empty()) secrets.insert(p.value);
      std::string raw = dsn.substr(p.value_begin, p.value_end - p.value_begin);
      if (!raw.empty()) secrets.insert(std::move(raw));
    }
  }
  // Longest first, so a secret that contains another is replaced whole.
  std::vector<std::string> ordered(secrets.begin(), secrets.end());
  std::sort(ordered.begin(), ordered.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  std::string out = text;
  for (const std::string& secret : ordered) {
    size_t pos = 0;
    while ((pos = out.find(secret, pos)) != std::string::npos) {
      out.replace(pos, secret.size(), kRedacted);
      pos += sizeof(kRedacted) - 1;
    }
  }
  return out;
}

std::string DsnWithParam(const std::string& dsn, const std::string& key, const std::string& value) {
  if (IsUriDsn(dsn)) {
    const UriParts parts = ParseUri(dsn);
    std::vector<Param> matches;
    for (const Param& p : parts.params) {
      // Includes the userinfo password: overriding it in place keeps no stale secret around.
      if (p.key == key) matches.push_back(p);
    }
    const std::string encoded = PercentEncode(value);
    if (!matches.empty()) {
      return ReplaceSpans(dsn, matches,
                          [&](const Param&) -> const std::string& { return encoded; });
    }
    const char separator = parts.query_begin == std::string::npos     ? '?'
                           : (dsn.back() == '?' || dsn.back() == '&') ? '\0'
                                                                      : '&';
    std::string out = dsn;
    if (separator != '\0') out.push_back(separator);
    return out + PercentEncode(key) + "=" + encoded;
  }
  std::vector<Param> matches;
  for (Param& p : ParseKeyValue(dsn)) {
    if (p.key == key) matches.push_back(std::move(p));
  }
  const std::string quoted = QuoteKeyValue(value);
  if (!matches.empty()) {
    return ReplaceSpans(dsn, matches, [&](const Param&) -> const std::string& { return quoted; });
  }
  std::string out = dsn;
  if (!out.empty() && !IsSpace(out.back())) out.push_back(' ');
  return out + key + "=" + quoted;
}

core::Status ValidateDsn(const std::string& dsn) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (options != nullptr) {
    PQconninfoFree(options);
    return core::Status::Ok();
  }
  std::string message = error != nullptr ? error : "out of memory parsing connection string";
  PQfreemem(error);
  while (!message.empty() && IsSpace(message.back())) message.pop_back();
  message = RedactSecrets(WithoutSecretFragments(message, dsn), {dsn});
  if (MayHoldSecret(dsn)) {
    message += IsUriDsn(dsn)
                   ? " (in a URI, percent-encode spaces and reserved characters: p%40ss%20word;"
                     " a ${VAR} reference is encoded for you)"
                   : " (a value with spaces, quotes or backslashes goes in single quotes, with"
                     " \\' and \\\\ escaped: password='it\\'s'; a ${VAR} reference is quoted for"
                     " you)";
  }
  return core::InvalidArgument(message);
}

bool MayHoldSecret(const std::string& text) { return SecretStart(text) != std::string::npos; }

core::Result<std::string> ExpandDsnEnvironment(const std::string& dsn_template) {
  SLUICE_ASSIGN_OR_RETURN(std::vector<TemplatePiece> pieces, SplitTemplate(dsn_template));
  // References contain no blank, quote, '=', ':', '@', '/', '?' or '&', so the template
  // tokenizes as the expanded string will, value for value.
  std::vector<std::pair<Param, Spelling>> values;
  if (IsUriDsn(dsn_template)) {
    for (Param& p : UriTextValues(dsn_template)) {
      values.emplace_back(std::move(p), Spelling::kPercentEncoded);
    }
  } else {
    for (Param& p : ParseKeyValue(dsn_template)) {
      const bool quoted =
          p.value_begin < dsn_template.size() && dsn_template[p.value_begin] == '\'';
      values.emplace_back(std::move(p), quoted ? Spelling::kQuoted : Spelling::kUnquoted);
    }
  }
  std::string out;
  size_t pos = 0;
  for (const auto& [value, spelling] : values) {
    const bool holds_reference =
        std::any_of(pieces.begin(), pieces.end(), [&, &v = value](const TemplatePiece& piece) {
          return piece.is_variable && piece.begin >= v.value_begin && piece.end <= v.value_end;
        });
    if (!holds_reference) continue;
    SLUICE_ASSIGN_OR_RETURN(std::string before,
                            ExpandEnvironment(dsn_template.substr(pos, value.value_begin - pos)));
    SLUICE_ASSIGN_OR_RETURN(
        std::string expanded,
        ExpandValue(dsn_template.substr(value.value_begin, value.value_end - value.value_begin),
                    spelling));
    out += before + expanded;
    pos = value.value_end;
  }
  SLUICE_ASSIGN_OR_RETURN(std::string rest, ExpandEnvironment(dsn_template.substr(pos)));
  return out + rest;
}

}  // namespace sluice::config
