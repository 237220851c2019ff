// The SDK's value types: errors, knob declarations, configurations, parameters.
#include "test_common.hpp"

using namespace oneadapt;

TEST_CASE("Error messages are one line and keep their code") {
  Error e(Errc::corrupt_data, "clip.mp4: truncated\n  at frame 12\n  backtrace...");
  CHECK(std::string(e.what()) == "clip.mp4: truncated");
  CHECK(e.code() == Errc::corrupt_data);
  CHECK(std::string(errc_name(Errc::abi_mismatch)) == "abi_mismatch");
}

TEST_CASE("numeric knobs label their values exactly") {
  auto k = KnobSpec::numeric("scale", "Resolution", "x native", {1.0, 0.9, 0.35, 30}, "d");
  REQUIRE(k.values.size() == 4);
  CHECK(k.values[0].label == "1");
  CHECK(k.values[1].label == "0.9");
  CHECK(k.values[2].label == "0.35");
  CHECK(k.values[3].label == "30");
  CHECK_NOTHROW(validate(k));
}

TEST_CASE("knob validation names the knob and the problem") {
  auto expect = [](const KnobSpec& k, const std::string& what) {
    try {
      validate(k);
      FAIL("no error for " << what);
    } catch (const Error& e) {
      INFO(e.what());
      CHECK(e.code() == Errc::invalid_argument);
      CHECK(test::contains(e.what(), what));
    }
  };
  expect(KnobSpec{"qp", "", "", "", {}, 0}, "knob 'qp': ladder is empty");
  expect(KnobSpec::numeric("Bad Key", "", "", {1}, ""), "key must be");
  expect(KnobSpec::numeric("qp", "", "", {20, 20}, ""), "value '20' appears twice");
  expect(KnobSpec::numeric("qp", "", "", {20, 30}, "", 2), "default index 2 is outside");
  expect(KnobSpec{"qp", "", "", "", {KnobValue::named("", 1)}, 0}, "empty label");
  expect(KnobSpec::numeric("qp", "", "", {std::nan("")}, ""), "not finite");
}

TEST_CASE("configurations index knobs by key") {
  std::vector<KnobSpec> knobs{
      KnobSpec::numeric("qp", "", "", {20, 30, 40}, ""),
      KnobSpec{
          "codec", "", "", "", {KnobValue::named("flac", 0), KnobValue::named("vorbis", 1)}, 0}};
  auto ref = Configuration::most_expensive(knobs);
  CHECK(ref.str() == "qp=20 codec=flac");
  auto c = Configuration::at_indices(knobs, {2, 1});
  CHECK(c.number("qp") == 40);
  CHECK(c.label("codec") == "vorbis");
  CHECK(c.index("codec") == 1);
  CHECK(c.has("qp"));
  CHECK_FALSE(c.has("fps"));
  CHECK(c != ref);
  CHECK(ref < c);
  CHECK(Configuration::at_indices(knobs, {2, 1}) == c);
  try {
    c.number("fps");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::not_found);
    CHECK(test::contains(e.what(), "'fps'"));
  }
  CHECK_THROWS_AS(Configuration::at_indices(knobs, {3, 0}), Error);
  CHECK_THROWS_AS(Configuration::at_indices(knobs, {0}), Error);
}

TEST_CASE("parameters are typed and errors name the key") {
  Params p;
  p.set("tau", "0.5");
  p.set("n", "12");
  p.set("on", "true");
  p.set("classes", " person, car ,, bus ");
  p.set("bad", "0.5x");
  CHECK(p.number("tau") == doctest::Approx(0.5));
  CHECK(p.integer("n") == 12);
  CHECK(p.boolean("on"));
  CHECK(p.list("classes") == std::vector<std::string>{"person", "car", "bus"});
  try {
    p.number("bad");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_argument);
    CHECK(std::string(e.what()) == "parameter 'bad': '0.5x' is not a valid number");
  }
  CHECK_THROWS_AS(p.integer("tau"), Error);
  CHECK_THROWS_AS(p.str("missing"), Error);

  ParamSpec spec{"n", "", "", ParamType::integer, "1"};
  CHECK_NOTHROW(check_param_value(spec, "-3"));
  CHECK_THROWS_AS(check_param_value(spec, "3.5"), Error);
  spec.type = ParamType::boolean;
  CHECK_THROWS_AS(check_param_value(spec, "yes"), Error);
}
