// The image service's reading of an identity: a cloud admin sees everything, a project's own admin
// only its project, the snapshot service any project's images to write but no image data.
import { canSee, contextFor, mayChooseOwner, mayReadData } from '../../../src/images/service';

describe('contextFor', () => {
  const cloudAdmin = contextFor({ kind: 'cloud-admin', projectId: null });
  const projectAdmin = contextFor({ kind: 'project', projectId: 'p2', projectAdmin: true });
  const member = contextFor({ kind: 'project', projectId: 'p1', projectAdmin: false });
  const service = contextFor({ kind: 'service', projectId: 'service' });

  it("lets a project's admin see only its own project's images, like a member", () => {
    expect(canSee(projectAdmin, 'p2')).toBe(true);
    expect(canSee(projectAdmin, 'p1')).toBe(false);
    expect(canSee(projectAdmin, null)).toBe(false);
    expect(mayChooseOwner(projectAdmin)).toBe(false);
    expect(canSee(member, 'p1')).toBe(true);
    expect(canSee(member, 'p2')).toBe(false);
  });

  it('lets a cloud admin see and give away anything, a system-scoped one too', () => {
    expect(cloudAdmin).toEqual({ projectId: null, isAdmin: true, isService: false });
    expect(canSee(cloudAdmin, 'p1')).toBe(true);
    expect(canSee(cloudAdmin, null)).toBe(true);
    expect(mayChooseOwner(cloudAdmin)).toBe(true);
    expect(mayReadData(cloudAdmin)).toBe(true);
  });

  it("lets the snapshot service write any project's images but read no image data", () => {
    expect(service).toEqual({ projectId: 'service', isAdmin: false, isService: true });
    expect(canSee(service, 'p1')).toBe(true);
    expect(mayChooseOwner(service)).toBe(true);
    expect(mayReadData(service)).toBe(false);
    expect(mayReadData(member)).toBe(true);
  });
});
