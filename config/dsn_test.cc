#include "config/dsn.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <stdlib.h>

#include <map>
#include <string>

namespace sluice::config {
namespace {

// What libpq itself reads from a connection string: keyword -> value (set ones only).
std::map<std::string, std::string> LibpqParse(const std::string& dsn) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  EXPECT_NE(options, nullptr) << dsn << ": " << (error ? error : "");
  PQfreemem(error);
  std::map<std::string, std::string> out;
  if (options == nullptr) return out;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) out[o->keyword] = o->val;
  }
  PQconninfoFree(options);
  return out;
}

TEST(RedactDsnTest, KeyValueForms) {
  const std::pair<std::string, std::string> cases[] = {
      {"host=db1 password=secret user=u", "host=db1 password=******** user=u"},
      {"password=secret", "password=********"},
      {"host=db1 password='my secret' port=5432", "host=db1 password=******** port=5432"},
      {R"(password='it\'s \\ odd' user=u)", "password=******** user=u"},
      {R"(password=back\ slash user=u)", "password=******** user=u"},
      {"host=db1   password  =  spaced\tuser=u", "host=db1   password  =  ********\tuser=u"},
      {"sslpassword=keypass host=h", "sslpassword=******** host=h"},
      {"password=a password=b", "password=******** password=********"},
      {"host=db1 user=u", "host=db1 user=u"},
      {"", ""},
      // libpq skips blanks after '=', so here the password is "host=x": all of it is secret.
      {"password= host=x", "password= ********"},
      {"password=''", "password=********"},
      // passfile names a file, not a secret.
      {"passfile=/home/u/.pgpass", "passfile=/home/u/.pgpass"},
  };
  for (const auto& [dsn, want] : cases) {
    EXPECT_EQ(RedactDsn(dsn), want) << dsn;
  }
}

TEST(RedactDsnTest, UriForms) {
  const std::pair<std::string, std::string> cases[] = {
      {"postgresql://user:secret@host:5432/db", "postgresql://user:********@host:5432/db"},
      {"postgres://user:secret@host/db", "postgres://user:********@host/db"},
      {"postgresql://user:p%40ss%3A@host/db", "postgresql://user:********@host/db"},
      {"postgresql://user@host/db", "postgresql://user@host/db"},
      {"postgresql://host/db?password=secret&sslmode=require",
       "postgresql://host/db?password=********&sslmode=require"},
      {"postgresql://u:one@h1,h2:5433/db?sslpassword=two&application_name=x",
       "postgresql://u:********@h1,h2:5433/db?sslpassword=********&application_name=x"},
      {"postgresql://host/db?pass%77ord=encodedkey", "postgresql://host/db?pass%77ord=********"},
      {"postgresql://", "postgresql://"},
      {"postgresql://:secret@/db", "postgresql://:********@/db"},
  };
  for (const auto& [dsn, want] : cases) {
    EXPECT_EQ(RedactDsn(dsn), want) << dsn;
  }
}

// The redacted string still parses, with exactly the secrets changed: proof that our tokenizer
// agrees with libpq on where each value starts and ends.
TEST(RedactDsnTest, AgreesWithLibpq) {
  const std::string dsns[] = {
      "host=db1 password=secret user=u",
      R"(host=db1 password='it\'s a \\ secret' user='x y' dbname=app)",
      "password = spaced host=h",
      "host=h sslpassword=keysecret password=pwsecret",
      "postgresql://user:secret@host:5432/db?sslmode=require",
      "postgresql://user:p%40ss@host/db?password=other&application_name=app",
      "postgres://u:x@[::1]:5432/db",
  };
  for (const std::string& dsn : dsns) {
    auto before = LibpqParse(dsn);
    auto after = LibpqParse(RedactDsn(dsn));
    ASSERT_FALSE(before.empty()) << dsn;
    for (const auto& [key, value] : before) {
      if (key == "password" || key == "sslpassword") {
        EXPECT_EQ(after[key], kRedacted) << dsn;
        EXPECT_EQ(RedactDsn(dsn).find(value), std::string::npos) << dsn;
      } else {
        EXPECT_EQ(after[key], value) << dsn << " key " << key;
      }
    }
    EXPECT_EQ(after.size(), before.size()) << dsn;
  }
}

TEST(RedactSecretsTest, RemovesEveryPasswordFromText) {
  const std::vector<std::string> dsns = {
      "host=a password='s3cr et' user=u",
      "postgresql://u:p%40ss@h/db",
      "host=b user=nopassword",
  };
  EXPECT_EQ(RedactSecrets("FATAL: password 's3cr et' rejected; s3cr et again", dsns),
            "FATAL: password ******** rejected; ******** again");
  // Both the decoded and the URI-encoded spelling.
  EXPECT_EQ(RedactSecrets("tried p@ss and p%40ss", dsns), "tried ******** and ********");
  EXPECT_EQ(RedactSecrets("nothing secret here", dsns), "nothing secret here");
  EXPECT_EQ(RedactSecrets("", dsns), "");
  EXPECT_EQ(RedactSecrets("keep 'user=nopassword'", dsns), "keep 'user=nopassword'");
  EXPECT_EQ(RedactSecrets("no dsns", {}), "no dsns");
  // A password that contains another is replaced whole.
  EXPECT_EQ(RedactSecrets("xx abcdef xx", {"password=abc", "password=abcdef"}), "xx ******** xx");
  // A quoted value's raw spelling (with escapes) is also a secret if it appears.
  EXPECT_EQ(RedactSecrets(R"(conninfo password='a\'b')", {R"(password='a\'b')"}),
            "conninfo password=********");
}

TEST(DsnWithParamTest, KeyValueForm) {
  EXPECT_EQ(DsnWithParam("host=h", "replication", "database"), "host=h replication=database");
  EXPECT_EQ(DsnWithParam("", "application_name", "sluice"), "application_name=sluice");
  EXPECT_EQ(DsnWithParam("host=h ", "a", "b"), "host=h a=b");
  EXPECT_EQ(DsnWithParam("host=h application_name=old port=1", "application_name", "new"),
            "host=h application_name=new port=1");
  EXPECT_EQ(
      DsnWithParam("application_name='old one' x=1 application_name=o2", "application_name", "n"),
      "application_name=n x=1 application_name=n");
  EXPECT_EQ(DsnWithParam("host=h", "application_name", "sluice orders"),
            "host=h application_name='sluice orders'");
  EXPECT_EQ(DsnWithParam("host=h", "options", R"(it's \ here)"),
            R"(host=h options='it\'s \\ here')");
  EXPECT_EQ(DsnWithParam("host=h", "password", ""), "host=h password=''");
}

TEST(DsnWithParamTest, UriForm) {
  EXPECT_EQ(DsnWithParam("postgresql://u@h/db", "replication", "database"),
            "postgresql://u@h/db?replication=database");
  EXPECT_EQ(DsnWithParam("postgresql://u@h/db?sslmode=require", "replication", "database"),
            "postgresql://u@h/db?sslmode=require&replication=database");
  EXPECT_EQ(DsnWithParam("postgresql://u@h/db?", "a", "b"), "postgresql://u@h/db?a=b");
  EXPECT_EQ(DsnWithParam("postgresql://h/db?application_name=old&x=1", "application_name", "new"),
            "postgresql://h/db?application_name=new&x=1");
  EXPECT_EQ(DsnWithParam("postgresql://h", "application_name", "sluice orders/1"),
            "postgresql://h?application_name=sluice%20orders%2F1");
  // The userinfo password is overridden in place rather than left behind.
  EXPECT_EQ(DsnWithParam("postgresql://u:old@h/db", "password", "n@w"),
            "postgresql://u:n%40w@h/db");
}

TEST(DsnWithParamTest, LibpqReadsTheNewValue) {
  const std::string dsns[] = {
      "host=h port=5432 user=u",
      "host=h application_name=x",
      "postgresql://u@h:5432/db",
      "postgresql://u@h/db?application_name=x&sslmode=disable",
      "postgres://h",
  };
  const std::pair<std::string, std::string> params[] = {
      {"replication", "database"},
      {"application_name", "sluice orders 'quoted' \\ back"},
      {"fallback_application_name", "sluice"},
  };
  for (const std::string& dsn : dsns) {
    for (const auto& [key, value] : params) {
      const std::string out = DsnWithParam(dsn, key, value);
      auto before = LibpqParse(dsn);
      auto after = LibpqParse(out);
      EXPECT_EQ(after[key], value) << out;
      before[key] = value;
      EXPECT_EQ(after, before) << out;
    }
  }
}

TEST(ValidateDsnTest, AcceptsBothForms) {
  EXPECT_TRUE(ValidateDsn("host=127.0.0.1 port=5432 dbname=app user=sluice").ok());
  EXPECT_TRUE(ValidateDsn("postgresql://sluice:pw@127.0.0.1:5432/app?sslmode=disable").ok());
  EXPECT_TRUE(ValidateDsn("").ok());  // all defaults, as libpq allows
}

TEST(ValidateDsnTest, RejectsMalformedWithoutLeakingSecrets) {
  // Without a secret in the string, libpq's message is shown whole.
  auto unknown = ValidateDsn("host=h hots=x");
  EXPECT_NE(unknown.message().find("hots"), std::string::npos) << unknown.message();
  // What libpq quotes from before the password is kept.
  auto before = ValidateDsn("hots=x password=hunter2");
  EXPECT_NE(before.message().find("invalid connection option \"hots\""), std::string::npos)
      << before.message();
  EXPECT_EQ(before.message().find("hunter2"), std::string::npos) << before.message();
  // After it, anything may be part of the password: "bogus" may be its second word.
  auto missing_equals = ValidateDsn("host=h password=hunter2 bogus");
  EXPECT_EQ(missing_equals.code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(missing_equals.message().find("hunter2"), std::string::npos);
  EXPECT_EQ(missing_equals.message().find("bogus"), std::string::npos) << missing_equals.message();
  EXPECT_NE(missing_equals.message().find("missing \"=\" after \"********\""), std::string::npos)
      << missing_equals.message();
  EXPECT_NE(missing_equals.message().find("single quotes"), std::string::npos);
  auto spaced = ValidateDsn("host=h password=s3cr3t p4rt user=u");
  EXPECT_EQ(spaced.message().find("s3cr3t"), std::string::npos) << spaced.message();
  EXPECT_EQ(spaced.message().find("p4rt"), std::string::npos) << spaced.message();
  auto option_like = ValidateDsn("host=h password=x host2=y");
  EXPECT_EQ(option_like.message().find("host2"), std::string::npos) << option_like.message();
  auto unterminated = ValidateDsn("host=h password='hunter2");
  EXPECT_FALSE(unterminated.ok());
  EXPECT_EQ(unterminated.message().find("hunter2"), std::string::npos);
  auto bad_uri = ValidateDsn("postgresql://u:hunt%zzer2@h/db");
  EXPECT_FALSE(bad_uri.ok());
  EXPECT_EQ(bad_uri.message().find("hunt%zzer2"), std::string::npos) << bad_uri.message();
  EXPECT_EQ(bad_uri.message().find("hunt"), std::string::npos) << bad_uri.message();
  auto uri_query = ValidateDsn("postgresql://u:s3cr3t@h/db?oops");
  EXPECT_FALSE(uri_query.ok());
  EXPECT_EQ(uri_query.message().find("s3cr3t"), std::string::npos) << uri_query.message();
  EXPECT_EQ(uri_query.message().find("oops"), std::string::npos) << uri_query.message();
  EXPECT_NE(uri_query.message().find("percent-encode"), std::string::npos) << uri_query.message();
  auto encoded_key = ValidateDsn("postgresql://h/db?pass%77ord=s3cr3t&oops");
  EXPECT_FALSE(encoded_key.ok());
  EXPECT_EQ(encoded_key.message().find("oops"), std::string::npos) << encoded_key.message();
}

TEST(MayHoldSecretTest, NamesPasswordsAndUriUserInformation) {
  EXPECT_TRUE(MayHoldSecret("host=h password=x"));
  EXPECT_TRUE(MayHoldSecret("host=h PassWord = x"));
  EXPECT_TRUE(MayHoldSecret("sslpassword=x"));
  EXPECT_TRUE(MayHoldSecret("postgresql://u:x@h/db"));
  EXPECT_TRUE(MayHoldSecret("postgresql://u@h/db"));  // conservative: any user information
  EXPECT_TRUE(MayHoldSecret("postgresql://h/db?pass%77ord=x"));
  EXPECT_FALSE(MayHoldSecret("host=h user=u"));
  EXPECT_FALSE(MayHoldSecret("postgresql://h/db?sslmode=require"));
  EXPECT_FALSE(MayHoldSecret("64MB"));
}

// Passwords with every character that means something to libpq or YAML, and non-ASCII.
const std::string kAwkwardPasswords[] = {
    "with space",   "it's",      R"(back\slash)", R"(dq"uote)", "eq=ual",       "hash#tag",
    "ünï©ødé 密码", "",          "  lead",        R"(trail\)",  "${NOT_A_VAR}", "a&b?c/d@e:f",
    "' OR 1=1 --",  R"(\'\\'')", "%41%zz",
};

class ExpandDsnEnvironmentTest : public ::testing::Test {
 protected:
  void TearDown() override {
    unsetenv("SLUICE_TEST_PW");
    unsetenv("SLUICE_TEST_USER");
    unsetenv("SLUICE_TEST_DB");
  }
};

TEST_F(ExpandDsnEnvironmentTest, KeyValuePasswordsReachLibpqExactly) {
  for (const std::string& password : kAwkwardPasswords) {
    setenv("SLUICE_TEST_PW", password.c_str(), 1);
    const std::pair<std::string, std::string> cases[] = {
        {"host=h password=${SLUICE_TEST_PW} user=u", password},
        {"host=h password='${SLUICE_TEST_PW}' user=u", password},
        {"host=h password = ${SLUICE_TEST_PW}\tuser=u", password},
        {R"(host=h password=a\ b${SLUICE_TEST_PW}c user=u)", "a b" + password + "c"},
        {"host=h password='x y ${SLUICE_TEST_PW}' user=u", "x y " + password},
        {"host=h user=u password=${SLUICE_TEST_PW}", password},
    };
    for (const auto& [dsn_template, want] : cases) {
      auto expanded = ExpandDsnEnvironment(dsn_template);
      ASSERT_TRUE(expanded.ok()) << expanded.status().message();
      auto parsed = LibpqParse(*expanded);
      EXPECT_EQ(parsed["password"], want) << dsn_template << " -> " << *expanded;
      EXPECT_EQ(parsed["user"], "u") << *expanded;
      EXPECT_EQ(parsed["host"], "h") << *expanded;
      // What libpq reads, RedactDsn hides.
      if (!want.empty()) {
        EXPECT_EQ(RedactDsn(*expanded).find(want), std::string::npos) << *expanded;
        EXPECT_EQ(RedactSecrets("said " + want, {*expanded}), "said ********") << *expanded;
      }
    }
  }
}

TEST_F(ExpandDsnEnvironmentTest, UriValuesArePercentEncoded) {
  for (const std::string& password : kAwkwardPasswords) {
    setenv("SLUICE_TEST_PW", password.c_str(), 1);
    setenv("SLUICE_TEST_USER", "us er@x:y", 1);
    setenv("SLUICE_TEST_DB", "my db/x?y", 1);
    for (const std::string& dsn_template :
         {std::string("postgresql://${SLUICE_TEST_USER}:${SLUICE_TEST_PW}@h:5433/"
                      "${SLUICE_TEST_DB}?sslmode=disable"),
          std::string("postgres://${SLUICE_TEST_USER}@h:5433/${SLUICE_TEST_DB}?password=${"
                      "SLUICE_TEST_PW}&sslmode=disable")}) {
      auto expanded = ExpandDsnEnvironment(dsn_template);
      ASSERT_TRUE(expanded.ok()) << expanded.status().message();
      auto parsed = LibpqParse(*expanded);
      EXPECT_EQ(parsed["password"], password) << *expanded;
      EXPECT_EQ(parsed["user"], "us er@x:y") << *expanded;
      EXPECT_EQ(parsed["dbname"], "my db/x?y") << *expanded;
      EXPECT_EQ(parsed["host"], "h") << *expanded;
      EXPECT_EQ(parsed["port"], "5433") << *expanded;
      EXPECT_EQ(parsed["sslmode"], "disable") << *expanded;
      if (!password.empty()) {
        EXPECT_EQ(RedactSecrets("said " + password, {*expanded}), "said ********") << *expanded;
      }
    }
  }
}

TEST_F(ExpandDsnEnvironmentTest, ReferencesOutsideValuesExpandAsTheyAre) {
  setenv("SLUICE_TEST_PW", "host=h port=6000 password='a b'", 1);
  EXPECT_EQ(*ExpandDsnEnvironment("${SLUICE_TEST_PW}"), "host=h port=6000 password='a b'");
  setenv("SLUICE_TEST_PW", "sslmode=disable", 1);
  EXPECT_EQ(*ExpandDsnEnvironment("host=h ${SLUICE_TEST_PW}"), "host=h sslmode=disable");
  // The host list of a URI may hold host:port pairs.
  setenv("SLUICE_TEST_PW", "h1:5432,h2:5433", 1);
  auto hosts = LibpqParse(*ExpandDsnEnvironment("postgresql://u@${SLUICE_TEST_PW}/db"));
  EXPECT_EQ(hosts["host"], "h1,h2");
  EXPECT_EQ(hosts["port"], "5432,5433");
  // Without references nothing changes but $${.
  EXPECT_EQ(*ExpandDsnEnvironment("host=h application_name=$${x}"), "host=h application_name=${x}");
  EXPECT_EQ(*ExpandDsnEnvironment("host=h  port=1"), "host=h  port=1");
}

TEST_F(ExpandDsnEnvironmentTest, ErrorsNameTheVariableNeverAValue) {
  unsetenv("SLUICE_TEST_PW");
  auto unset = ExpandDsnEnvironment("host=h password=${SLUICE_TEST_PW}");
  EXPECT_EQ(unset.status().message(), "environment variable 'SLUICE_TEST_PW' is not set");
  auto unterminated = ExpandDsnEnvironment("host=h password=${SLUICE_TEST_PW");
  EXPECT_FALSE(unterminated.ok());
  EXPECT_EQ(unterminated.status().code(), core::StatusCode::kInvalidArgument);
}

TEST(IsUriDsnTest, Detects) {
  EXPECT_TRUE(IsUriDsn("postgresql://h"));
  EXPECT_TRUE(IsUriDsn("postgres://h"));
  EXPECT_FALSE(IsUriDsn("host=h"));
  EXPECT_FALSE(IsUriDsn("postgresql:/h"));
}

}  // namespace
}  // namespace sluice::config
