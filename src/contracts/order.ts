/** The order as the saga carries it: integer cents, snake_case as in the API and the saga log. */
export type OrderLine = {
  product_id: string;
  quantity: number;
  unit_price_cents: number;
};

export interface OrderRequest {
  customer_id: string;
  items: OrderLine[];
  total_cents: number;
}
