declare module "kinesalite" {
  import type { Server } from "node:http";
  interface KinesaliteOptions {
    path?: string;
    ssl?: boolean;
    createStreamMs?: number;
    deleteStreamMs?: number;
    updateStreamMs?: number;
    shardLimit?: number;
  }
  function kinesalite(opts?: KinesaliteOptions): Server;
  export default kinesalite;
}
