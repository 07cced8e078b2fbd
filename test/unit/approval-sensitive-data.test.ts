import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { luhnValid } from "../../src/approvals/triggers/card-number.js";
import { redactSummary } from "../../src/approvals/triggers/redaction.js";
import { findSensitiveData, type SensitiveKind } from "../../src/approvals/triggers/sensitive-data.js";

/** The check digit that makes `body` + digit Luhn-valid. */
function checkDigit(body: string): string {
  for (let digit = 0; digit <= 9; digit++) if (luhnValid(body + digit)) return String(digit);
  throw new Error("unreachable: one of ten check digits is always valid");
}

/** Luhn-valid card numbers of 13–19 digits that start with 2–6. */
const cardDigits = fc
  .tuple(
    fc.integer({ min: 2, max: 6 }),
    fc
      .integer({ min: 13, max: 19 })
      .chain((length) =>
        fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: length - 2, maxLength: length - 2 }),
      ),
  )
  .map(([first, rest]) => `${first}${rest}${checkDigit(`${first}${rest}`)}`);

/**
 * A card number written whole, or as printed: groups of four joined by spaces or
 * dashes, a last group of one or two digits folded into the one before (4-4-5 for 13
 * digits, 4-4-4-4-3 for 19).
 */
const writtenCard = fc.tuple(cardDigits, fc.constantFrom("", " ", "-")).map(([digits, separator]) => {
  if (!separator) return digits;
  const groups = digits.match(/.{1,4}/g) as string[];
  const last = groups.at(-1) as string;
  if (last.length < 3) groups.splice(-2, 2, `${groups.at(-2)}${last}`);
  return groups.join(separator);
});

/** Issued-looking SSNs: area 001–899 but not 666, group 01–99, serial 0001–9999. */
const ssn = fc
  .tuple(
    fc.integer({ min: 1, max: 899 }).filter((area) => area !== 666),
    fc.integer({ min: 1, max: 99 }),
    fc.integer({ min: 1, max: 9999 }),
  )
  .map(([area, group, serial]) => `${pad(area, 3)}-${pad(group, 2)}-${pad(serial, 4)}`);

const pad = (value: number, width: number) => String(value).padStart(width, "0");

/** Text with no digits and none of the words the detectors key on. */
const filler = fc.string({ unit: fc.constantFrom(..."abcdef XYZ.,!?\n"), maxLength: 40 });

const kinds = (text: string): SensitiveKind[] => findSensitiveData(text).map((match) => match.kind);
const spans = (text: string) => findSensitiveData(text).map((match) => text.slice(match.start, match.end));

describe("luhnValid", () => {
  it.each([
    ["4111111111111111", true],
    ["4111111111111112", false],
    ["378282246310005", true],
    ["79927398713", true],
    ["79927398710", false],
    ["0", true],
  ])("%s is %s", (digits, valid) => {
    expect(luhnValid(digits)).toBe(valid);
  });

  it("accepts exactly one check digit for every body", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: 1, maxLength: 20 }),
        (body) => {
          const valid = [..."0123456789"].filter((digit) => luhnValid(body + digit));
          expect(valid).toHaveLength(1);
        },
      ),
    );
  });
});

describe("findSensitiveData: card numbers", () => {
  it("finds every Luhn-valid number, written whole or grouped, at its exact span", () => {
    fc.assert(
      fc.property(filler, writtenCard, filler, (before, card, after) => {
        const text = `${before} ${card} ${after}`;
        expect(findSensitiveData(text)).toEqual([
          { kind: "card_number", start: before.length + 1, end: before.length + 1 + card.length },
        ]);
      }),
    );
  });

  it("ignores a number whose check digit is wrong", () => {
    fc.assert(
      fc.property(cardDigits, fc.integer({ min: 1, max: 9 }), (digits, shift) => {
        const wrong = digits.slice(0, -1) + ((Number(digits.at(-1)) + shift) % 10);
        expect(kinds(`card ${wrong} end`)).toEqual([]);
      }),
    );
  });

  it("ignores valid numbers that start with 0, 1 or 7–9, such as millisecond timestamps", () => {
    fc.assert(
      fc.property(cardDigits, fc.constantFrom("0", "1", "7", "8", "9"), (digits, first) => {
        const body = first + digits.slice(1, -1);
        expect(kinds(`id ${body}${checkDigit(body)}`)).toEqual([]);
      }),
    );
  });

  it.each([
    ["4111 1111 1111 1111", "4111 1111 1111 1111"],
    ["Amex 3782 822463 10005.", "3782 822463 10005"],
    ["order 12 4111-1111-1111-1111 shipped", "4111-1111-1111-1111"],
    ["4111111111111111 5 items", "4111111111111111"],
    ["x4111111111111111y", "4111111111111111"],
  ])("finds the card in %j", (text, card) => {
    expect(spans(text)).toEqual([card]);
  });

  it.each([
    ["12 digits", "411111111113"],
    ["20 digits", "41111111111111111113"],
    ["two separators in a row", "4111  1111  1111  1111"],
    ["dots between groups", "4111.1111.1111.1111"],
    ["single-digit groups", "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"],
    ["a last group of one digit", "4111 1111 1111 111 1"],
  ])("does not read %s as a card", (_, text) => {
    expect(kinds(text)).toEqual([]);
  });
});

describe("findSensitiveData: US SSNs", () => {
  it("finds every issued-looking SSN at its exact span", () => {
    fc.assert(
      fc.property(filler, ssn, filler, (before, number, after) => {
        const text = `${before} ${number} ${after}`;
        expect(findSensitiveData(text)).toEqual([
          { kind: "us_ssn", start: before.length + 1, end: before.length + 1 + number.length },
        ]);
      }),
    );
  });

  it.each(["001-01-0001", "665-12-3456", "667-12-3456", "899-99-9999", "123-01-6789", "123-45-0001"])(
    "finds %s",
    (number) => {
      expect(kinds(`ssn ${number}`)).toEqual(["us_ssn"]);
    },
  );

  it.each([
    ["area 000", "000-12-3456"],
    ["area 666", "666-12-3456"],
    ["area 900", "900-12-3456"],
    ["area 999", "999-12-3456"],
    ["group 00", "123-00-6789"],
    ["serial 0000", "123-45-0000"],
    ["no dashes", "123456789"],
    ["spaces", "123 45 6789"],
    ["a longer number before", "1123-45-6789"],
    ["a longer number after", "123-45-67890"],
    ["a dashed number before", "1-123-45-6789"],
    ["a dashed number after", "123-45-6789-1"],
  ])("ignores %s", (_, number) => {
    expect(kinds(`ref ${number} end`)).toEqual([]);
  });
});

describe("findSensitiveData: API keys", () => {
  it.each([
    ["Stripe secret key", "sk_live_51HqLyjWDarjtT1zdp7dcXkZ", "sk_live_51HqLyjWDarjtT1zdp7dcXkZ"],
    ["Stripe test key", "key sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"],
    ["Stripe restricted key", "rk_live_51HqLyjWDarjtT1zd", "rk_live_51HqLyjWDarjtT1zd"],
    ["sk- key", "OPENAI=sk-proj-Ab3dEf6hIj9kLm2nOp5q", "sk-proj-Ab3dEf6hIj9kLm2nOp5q"],
    ["Anthropic key", "sk-ant-api03-Ab3dEf6hIj9kLm2nOp5q-xyz", "sk-ant-api03-Ab3dEf6hIj9kLm2nOp5q-xyz"],
    ["GitHub token", `use ghp_${"a1B2".repeat(9)}`, `ghp_${"a1B2".repeat(9)}`],
    ["GitHub OAuth token", `gho_${"Z9y8".repeat(9)}`, `gho_${"Z9y8".repeat(9)}`],
    [
      "GitHub fine-grained token",
      `github_pat_11ABCDEFG0${"x".repeat(20)}`,
      `github_pat_11ABCDEFG0${"x".repeat(20)}`,
    ],
    ["Slack token", "xoxb-123456789012-abcdefGHIJ", "xoxb-123456789012-abcdefGHIJ"],
    ["AWS access key id", "AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"],
    ["AWS temporary key id", "id=ASIAY34FZKBOKMUTVV7A;", "ASIAY34FZKBOKMUTVV7A"],
    ["Google API key", `AIzaSyD-${"a1b2c3".repeat(5)}x`, `AIzaSyD-${"a1b2c3".repeat(5)}x`],
    [
      "JWT",
      "t eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ],
    ["api_key assignment", "api_key=8f3a9c2e1b7d4f60a5e3", "8f3a9c2e1b7d4f60a5e3"],
    ["JSON token field", '{"access_token": "Qm9vbGVhbk1heWJlVHJ1ZQ"}', "Qm9vbGVhbk1heWJlVHJ1ZQ"],
    [
      "X-Api-Key header",
      "X-Api-Key: 9c1185a5c5e9fc54612808977ee8f548b2258d31",
      "9c1185a5c5e9fc54612808977ee8f548b2258d31",
    ],
    ["bearer token", "Authorization: Bearer abcDEF123456ghiJKL789", "abcDEF123456ghiJKL789"],
  ])("finds a %s", (_, text, key) => {
    expect(findSensitiveData(text).map((match) => [match.kind, text.slice(match.start, match.end)])).toEqual([
      ["api_key", key],
    ]);
  });

  it.each([
    ["a short Stripe-like key", "sk_live_abc"],
    ["a publishable Stripe key", "pk_live_51HqLyjWDarjtT1zdp7dcXkZ"],
    ["a short sk- word", "task-manager"],
    ["AKIA inside a longer word", "XAKIAIOSFODNN7EXAMPLE"],
    ["a placeholder token", 'token: "xxxxxxxxxxxxxxxxxxxxxxx1"'],
    ["a token that is only a name", "api_key=your_api_key_here"],
    ["a short token", "token=abc123"],
    ["max_tokens", "max_tokens=4096"],
    ["bearer in prose", "the bearer of this letter"],
  ])("ignores %s", (_, text) => {
    expect(kinds(text)).toEqual([]);
  });
});

describe("findSensitiveData: passwords", () => {
  it.each([
    ["password=hunter2", "hunter2"],
    ["db_password: s3cr3t!", "s3cr3t!"],
    ["PASSWD = letmein", "letmein"],
    ["login?user=ada&pwd=pa55word&next=/", "pa55word"],
    ['{"password": "correct horse battery staple"}', "correct horse battery staple"],
    ['{"password":"he said \\"hi\\""}', 'he said \\"hi\\"'],
    ["secret='abc def'", "abc def"],
    ["postgres://admin:s3cr3t@db.internal:5432/app", "s3cr3t"],
  ])("finds the password in %j", (text, value) => {
    expect(findSensitiveData(text).map((match) => [match.kind, text.slice(match.start, match.end)])).toEqual([
      ["password", value],
    ]);
  });

  it.each([
    ["a password with no value", "password:\nnext line"],
    ["a password in prose", "my password is hunter2"],
    ["a field named like a password", "password_hint=colour"],
    ["a URL without a password", "https://ada@example.org/x"],
  ])("ignores %s", (_, text) => {
    expect(kinds(text)).toEqual([]);
  });
});

describe("findSensitiveData: overlaps and cost", () => {
  it("merges detectors that find the same secret into one span", () => {
    const text = "client_secret=sk_live_51HqLyjWDarjtT1zdp7dcXkZ rest";
    expect(findSensitiveData(text)).toEqual([{ kind: "api_key", start: 14, end: 46 }]);
  });

  it("returns sorted spans that never overlap", () => {
    const piece = fc.oneof(
      filler,
      writtenCard,
      ssn,
      fc.constant("password=x1 "),
      fc.constant("AKIAIOSFODNN7EXAMPLE"),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), (pieces) => {
        const found = findSensitiveData(pieces.join(" "));
        for (let i = 1; i < found.length; i++) {
          expect(found[i]?.start).toBeGreaterThanOrEqual(found[i - 1]?.end ?? 0);
        }
      }),
    );
  });
});

describe("redactSummary", () => {
  it("masks each kind by name", () => {
    expect(
      redactSummary(
        "pay 4111 1111 1111 1111, ssn 123-45-6789, key AKIAIOSFODNN7EXAMPLE, db postgres://u:pw1@h/x",
      ),
    ).toBe("pay [card number], ssn [SSN], key [API key], db postgres://u:[password]@h/x");
  });

  it("never leaves a detected card number or SSN in the output", () => {
    const secret = fc.oneof(writtenCard, ssn);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(filler, secret), { minLength: 1, maxLength: 6 }),
        filler,
        (pairs, tail) => {
          const text = pairs.map(([text, number]) => `${text} ${number} `).join("") + tail;
          // The filler has no digits, so any digit left would be part of a secret.
          expect(redactSummary(text, 100_000)).not.toMatch(/\d/);
        },
      ),
    );
  });

  it("masks before truncating, so a cut never shows part of a number", () => {
    const text = `${"a".repeat(480)} 4111 1111 1111 1111`;
    expect(redactSummary(text)).toBe(`${"a".repeat(480)} [card number]`);
    expect(redactSummary(text, 490)).toBe(`${"a".repeat(480)} [card nu…`);
  });

  it("keeps to maxLength and ends in … exactly when it cut", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.integer({ min: 1, max: 200 }), (text, maxLength) => {
        const summary = redactSummary(text, maxLength);
        expect(summary.length).toBeLessThanOrEqual(maxLength);
        if (summary !== redactSummary(text, 100_000)) expect(summary.endsWith("…")).toBe(true);
      }),
    );
  });

  it("does not split a surrogate pair", () => {
    expect(redactSummary("ab😀cd", 4)).toBe("ab…");
    expect(redactSummary("ab😀cd", 5)).toBe("ab😀…");
  });

  it("defaults to 500 and refuses a length below 1", () => {
    expect(redactSummary("x".repeat(600))).toHaveLength(500);
    expect(() => redactSummary("x", 0)).toThrow(RangeError);
  });
});
