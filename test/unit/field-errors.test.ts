import Type from "typebox";
import { Compile } from "typebox/compile";
import { describe, expect, it } from "vitest";
import { pointerToField, type SchemaError, toFieldErrors } from "../../src/http/field-errors.js";

describe("pointerToField", () => {
  it.each([
    ["", "", ""],
    ["", "auth_config", "auth_config"],
    ["/name", "", "name"],
    ["/client_secret", "auth_config", "auth_config.client_secret"],
    ["/auth_config/headers/0", "", "auth_config.headers[0]"],
    ["/tags/2", "", "tags[2]"],
    ["/items/0/1/name", "", "items[0][1].name"],
    ["/0", "", "[0]"],
    ["/0", "tags", "tags[0]"],
    ["/headers/X-Api-Key", "auth_config", "auth_config.headers.X-Api-Key"],
    ["/a~1b", "", "a/b"],
    ["/a~0b", "", "a~b"],
    ["/~01", "", "~1"],
    ["/config/1a", "", "config.1a"],
  ])("%j under prefix %j is %j", (pointer, prefix, field) => {
    expect(pointerToField(pointer, prefix)).toBe(field);
  });
});

describe("toFieldErrors", () => {
  it("names each missing property", () => {
    const errors: SchemaError[] = [
      { keyword: "required", instancePath: "", params: { requiredProperties: ["name", "platform"] } },
      { keyword: "required", instancePath: "/budget_config", params: { missingProperty: "currency" } },
    ];
    expect(toFieldErrors(errors)).toEqual([
      { field: "name", message: "is required" },
      { field: "platform", message: "is required" },
      { field: "budget_config.currency", message: "is required" },
    ]);
  });

  it("names each unknown property", () => {
    const errors: SchemaError[] = [
      { keyword: "additionalProperties", instancePath: "", params: { additionalProperties: ["x", "y"] } },
      { keyword: "additionalProperties", instancePath: "/config", params: { additionalProperties: "z" } },
    ];
    expect(toFieldErrors(errors, "body")).toEqual([
      { field: "body.x", message: "is not allowed" },
      { field: "body.y", message: "is not allowed" },
      { field: "body.config.z", message: "is not allowed" },
    ]);
  });

  it("uses the validator's message for other keywords, and a fallback when there is none", () => {
    const errors: SchemaError[] = [
      { keyword: "minLength", instancePath: "/name", params: { limit: 1 }, message: "must not be empty" },
      { keyword: "format", instancePath: "/tags/3", params: {} },
    ];
    expect(toFieldErrors(errors)).toEqual([
      { field: "name", message: "must not be empty" },
      { field: "tags[3]", message: "is invalid" },
    ]);
  });

  it("names the prefix, or (root), for an error on the whole value", () => {
    const error: SchemaError = { keyword: "type", instancePath: "", params: {}, message: "must be object" };
    expect(toFieldErrors([error], "auth_config")).toEqual([
      { field: "auth_config", message: "must be object" },
    ]);
    expect(toFieldErrors([error])).toEqual([{ field: "(root)", message: "must be object" }]);
  });

  it("reports the same field and message once", () => {
    const error: SchemaError = {
      keyword: "type",
      instancePath: "/port",
      params: {},
      message: "must be integer",
    };
    expect(toFieldErrors([error, error, { ...error, message: "must be number" }])).toEqual([
      { field: "port", message: "must be integer" },
      { field: "port", message: "must be number" },
    ]);
  });

  it("returns nothing for no errors", () => {
    expect(toFieldErrors([])).toEqual([]);
  });

  it("turns real TypeBox errors into one entry per problem", () => {
    const check = Compile(
      Type.Object(
        {
          name: Type.String({ minLength: 1 }),
          items: Type.Array(Type.Object({ n: Type.Integer() })),
        },
        { additionalProperties: false },
      ),
    );
    const value = { extra: true, items: [{ n: 1 }, { n: "two" }, {}] };
    const errors = toFieldErrors(check.Errors(value) as SchemaError[], "body");
    expect(errors).toEqual(
      expect.arrayContaining([
        { field: "body.name", message: "is required" },
        { field: "body.extra", message: "is not allowed" },
        { field: "body.items[1].n", message: "must be integer" },
        { field: "body.items[2].n", message: "is required" },
      ]),
    );
    // TypeBox reports an extra property twice; only the "is not allowed" entry is kept.
    expect(errors.filter((error) => error.field === "body.extra")).toHaveLength(1);
    expect(errors).toHaveLength(4);
  });
});
