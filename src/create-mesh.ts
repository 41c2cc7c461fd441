/** createMesh: a Mesh started in the order its parts need (identity, config or xDS, admin); closed again if any step fails. */
import { Mesh, type MeshOptions } from './mesh.js';
import { resolveBootstrap } from './xds/bootstrap.js';

/** Creates a mesh for this workload and loads its configuration. */
export async function createMesh(options: MeshOptions = {}): Promise<Mesh> {
  const mesh = new Mesh(options);
  try {
    await mesh.startSecurity(options);
    if (options.config !== undefined) await mesh.apply(options.config);
    else {
      const xds = options.xds ?? (resolveBootstrap() ? {} : undefined);
      if (xds) await mesh.connectXds(xds, options);
      // meshConfig alone (accessLogFile …) still shapes the listeners: translate the empty config.
      else if (options.meshConfig !== undefined) await mesh.apply([]);
    }
    if (options.admin) await mesh.startAdmin(options.admin);
  } catch (err) {
    await mesh.close();
    throw err;
  }
  return mesh;
}
