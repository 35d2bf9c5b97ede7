import { describe, expect, it } from "vitest";
import { sign, SIGNATURE_WINDOW_S, verify } from "../../../shared/signing.ts";
import { verifyBeacon } from "./beacon-signature.ts";

const SECRET = "unit-test-secret-0123456789";
const T = 1_700_000_000;

describe("verifyBeacon (node:crypto) answers exactly as shared verify (WebCrypto)", () => {
  it("on valid, tampered, expired, malformed and doubled headers", async () => {
    const body = '{"click_id":"x","user_agent":"ünï 😀 \\u0000"}';
    const good = await sign(SECRET, body, T);
    const mac = good.split("v1=")[1]!;
    const headers = [
      good,
      await sign("another-secret-0123456789", body, T),
      await sign(SECRET, body + " ", T),
      await sign(SECRET, body, T + SIGNATURE_WINDOW_S + 1),
      await sign(SECRET, body, T - SIGNATURE_WINDOW_S),
      undefined,
      "",
      "t=abc,v1=00",
      `t=${T},v1=${mac.toUpperCase()}`,
      `t=${T},v1=${mac.slice(0, 62)}`,
      `t=${T},v1=${mac}00`,
      `t=${T},v1=${mac.slice(0, 62)}zz`,
      `v1=${mac},t=${T}`,
      ` t = ${T} , v1 = ${mac} `,
      `t=${T}.0,v1=${mac}`,
      `t=0${T},v1=${mac}`,
      `t=${T},v1=${mac},x=1`,
      `${good}, ${good}`,
      `t=${T},t=${T},v1=${mac}`,
      `t${T},v1=${mac}`,
      `t=${T}`,
      `v1=${mac}`,
      `t=1e9,v1=${mac}`,
    ];
    for (const h of headers)
      for (const message of [body, "other"])
        expect(verifyBeacon(SECRET, h, message, T), `${h} / ${message}`).toEqual(await verify(SECRET, h, message, T));
    expect(verifyBeacon(SECRET, good, body, T)).toEqual({ ok: true });
  });
});
