/** The HTML report's chart libraries (UMD bundles as text), provided by web/vite.config.ts. */
declare module "virtual:fp8kit-chart-libraries" {
  export const d3: string;
  export const plot: string;
}
